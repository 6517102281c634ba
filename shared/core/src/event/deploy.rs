//! Payloads of pulling and deploying onto an environment.

use super::{DeployReason, Endpoint, HostOutcome};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostTiming {
    /// The host's name (`h1`; `h1/r1` for a host's second replica).
    pub host: String,
    pub millis: u64,
    #[serde(default, skip_serializing_if = "HostOutcome::is_unknown")]
    pub outcome: HostOutcome,
    /// Where the deployed run answers there (in `deploy.succeeded` and
    /// `deploy.rolled_back` of the `docker` target); none from an older Ferry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePulled {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRequested {
    /// Empty (with `image` empty) in a rollback: "what ran before", which the updater
    /// reads from the environment itself while it holds the deploy lock.
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    pub image: String,
    /// Only a rollback may go backwards.
    pub reason: DeployReason,
    /// The operator who asked (from their API token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployStarted {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// Set when this deploy goes back to an earlier image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRolledBack {
    /// What runs now.
    pub revision: String,
    pub image: String,
    /// What ran before the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    /// Why: a failed test, a failed health check, or who asked.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySucceeded {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// Per host and replica, in the environment's order: how long it took, and where
    /// the run answers there (see [`DeploySucceeded::endpoints`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

impl DeploySucceeded {
    /// Where the run can be reached, per host and replica (`(host, endpoint)`, the
    /// environment's first host first). Empty for a target without Ferry's own
    /// containers (Rancher) and in an event of an older Ferry.
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, &Endpoint)> {
        self.hosts
            .iter()
            .filter_map(|h| Some((h.host.as_str(), h.endpoint.as_ref()?)))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySuperseded {
    pub revision: String,
    pub image: String,
    /// What runs there now, from a newer run (empty when the newer run is still
    /// waiting to be deployed).
    pub running_image: String,
    /// The newer run.
    pub running_run_id: Uuid,
}

/// `ferry scale`: run `to` instances of what runs in the environment (Rancher: the
/// service's scale; Docker hosts: replicas per host).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleRequested {
    /// 1 to [`ScaleRequested::MAX`].
    pub to: u32,
    /// The operator who asked (from their API token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// The environment runs `to` instances, where it ran `from`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleSucceeded {
    pub from: u32,
    pub to: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

impl ScaleRequested {
    /// Most instances `ferry scale` asks for.
    pub const MAX: u32 = 100;
}

//! Payloads of pulling and deploying onto an environment.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostTiming {
    pub host: String,
    pub millis: u64,
    /// `pulled`, `present` (already had it) or `failed: <cause>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
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
    /// `promotion`, `manual` or `rollback` (only a rollback may go backwards).
    pub reason: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
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

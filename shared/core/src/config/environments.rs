//! `[environments.<name>]`: where a project is deployed, in promotion order, and whether
//! a run waits for an operator before each.

use super::canary::{CanaryConfig, CanaryFile};
use super::problem::{Problem, Report};
use super::rancher::{RancherConfig, RancherFile};
use super::word::{self, words};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an environment's deploys go (`target = "docker"` or `"rancher"`).
// A handful of environments are read once at start-up: a box would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Containers on the environment's `hosts`, replaced blue/green by the rancher-updater.
    Docker,
    /// A Rancher 1.6 service, upgraded through Rancher's API: the environment's
    /// `[rancher]` table. (A `[rancher]` table under `target = "docker"` is checked but
    /// not used, so an override can switch an environment's target for a while.)
    Rancher(RancherConfig),
}

impl Target {
    /// The word `target` has in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Docker => TargetKind::Docker.as_str(),
            Target::Rancher(_) => TargetKind::Rancher.as_str(),
        }
    }
}

words! {
    /// The word of `target`; the Rancher table joins it in [`Target`].
    pub enum TargetKind ("a target") {
        Docker = "docker",
        Rancher = "rancher",
    }
}

words! {
    /// Whether a run that passed the previous environment's tests waits for
    /// `ferry approve` before it is deployed here.
    #[derive(Default)]
    pub enum Approval ("an approval mode") {
        #[default]
        Auto = "auto",
        Manual = "manual",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentConfig {
    pub target: Target,
    /// Names from `[docker_hosts]`: where the image is pre-pulled (and run, for `docker`).
    pub hosts: Vec<String>,
    /// Base URL the tester checks after a deploy. `{host}` and `{port}` are replaced
    /// by the address and port of the container the run started on the environment's
    /// first host (`docker` target), which is also the default when this is unset.
    pub base_url: Option<String>,
    /// Overrides the project's `container.ports` here (`docker` target), e.g. when
    /// two environments' hosts share one machine's network.
    pub ports: Option<Vec<u16>>,
    /// `approval = "manual"`, or the older `auto_confirm = false`.
    pub approval: Approval,
    /// How long a held run waits for an answer before it ends as expired.
    pub approval_timeout_secs: u64,
    /// Whoever started a run (the operator of `ferry deploy`/`rollback`, or the commit's
    /// author, see `operators.<name>.authors`) cannot approve it into this environment.
    pub require_other_approver: bool,
    /// Deploys send a growing share of traffic to the new release first (`docker`
    /// target, behind the proxy).
    pub canary: Option<CanaryConfig>,
}

impl EnvironmentConfig {
    /// Whether promotion into this environment waits for an operator.
    pub fn needs_approval(&self) -> bool {
        self.approval == Approval::Manual
    }

    /// The Rancher service, for `target = "rancher"`.
    pub fn rancher(&self) -> Option<&RancherConfig> {
        match &self.target {
            Target::Rancher(r) => Some(r),
            Target::Docker => None,
        }
    }

    /// What is wrong with the environment `name`; `docker_hosts` are the defined hosts.
    pub(super) fn check(
        &self,
        name: &str,
        docker_hosts: &BTreeMap<String, super::DockerHostConfig>,
        out: &mut Vec<Problem>,
    ) {
        let at = format!("environments.{name}");
        if let Some(ports) = &self.ports
            && !distinct_pairs(ports)
        {
            out.bad(
                format!("{at}.ports"),
                "must be pairs of different ports (the blue/green slots, two per replica)",
            );
        }
        if self.approval_timeout_secs == 0 {
            out.bad(format!("{at}.approval_timeout_secs"), "must be above 0");
        }
        if let Target::Rancher(r) = &self.target {
            r.check(&format!("{at}.rancher"), out);
            if self.canary.is_some() {
                out.bad(
                    format!("{at}.canary"),
                    "canaries run on Docker hosts behind Ferry's proxy (target = \"docker\"); Rancher upgrades its service itself",
                );
            }
        }
        for host in self.hosts.iter().filter(|h| !docker_hosts.contains_key(*h)) {
            out.bad(
                format!("{at}.hosts"),
                format!("host `{host}` is not defined in [docker_hosts]"),
            );
        }
    }
}

/// Ports in blue/green pairs, all different.
pub(super) fn distinct_pairs(ports: &[u16]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    !ports.is_empty() && ports.len().is_multiple_of(2) && ports.iter().all(|p| seen.insert(*p))
}

/// An environment as written: `target` and `[rancher]` make the [`Target`], `approval`
/// and `auto_confirm` the [`Approval`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentFile {
    #[serde(default = "default_target")]
    target: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    ports: Option<Vec<u16>>,
    /// `false` holds a deploy into this environment until an operator approves it
    /// (the same as `approval = "manual"`).
    #[serde(default = "default_true")]
    auto_confirm: bool,
    #[serde(default = "default_approval")]
    approval: String,
    #[serde(default = "default_approval_timeout")]
    approval_timeout_secs: u64,
    #[serde(default)]
    rancher: Option<RancherFile>,
    #[serde(default)]
    require_other_approver: bool,
    #[serde(default)]
    canary: Option<CanaryFile>,
}

fn default_target() -> String {
    TargetKind::Docker.to_string()
}

fn default_true() -> bool {
    true
}

fn default_approval() -> String {
    Approval::default().to_string()
}

fn default_approval_timeout() -> u64 {
    24 * 3600
}

impl EnvironmentFile {
    /// The environment `name`; bad words and a missing `[rancher]` table are problems.
    pub(super) fn parse(self, name: &str, out: &mut Vec<Problem>) -> EnvironmentConfig {
        let at = format!("environments.{name}");
        let kind: Option<TargetKind> = match self.target.parse() {
            Ok(kind) => Some(kind),
            Err(e) => {
                out.bad(format!("{at}.target"), e.to_string());
                None
            }
        };
        let at_rancher = format!("{at}.rancher");
        let rancher = self.rancher.map(|r| r.parse(&at_rancher, out));
        let target = match (kind, rancher) {
            (Some(TargetKind::Docker), Some(unused)) => {
                unused.check(&at_rancher, out);
                Target::Docker
            }
            (Some(TargetKind::Docker), None) | (None, None) => Target::Docker,
            (Some(TargetKind::Rancher) | None, Some(r)) => Target::Rancher(r),
            (Some(TargetKind::Rancher), None) => {
                out.bad(
                    at_rancher,
                    "is required with target = \"rancher\": url, project_id, service_id, \
                     access_key, secret_key",
                );
                Target::Docker
            }
        };
        let approval = word::parse(
            &self.approval,
            format!("{at}.approval"),
            Approval::Manual,
            out,
        );
        EnvironmentConfig {
            target,
            hosts: self.hosts,
            base_url: self.base_url,
            ports: self.ports,
            approval: if self.auto_confirm {
                approval
            } else {
                Approval::Manual
            },
            approval_timeout_secs: self.approval_timeout_secs,
            require_other_approver: self.require_other_approver,
            canary: self.canary.map(|c| c.parse(&format!("{at}.canary"), out)),
        }
    }
}

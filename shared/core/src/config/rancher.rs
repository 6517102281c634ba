//! `[environments.<name>.rancher]`: the Rancher 1.6 (Cattle) service an environment
//! with `target = "rancher"` upgrades, reached through the `v2-beta` API.

use super::files::pem_certificate_problem;
use super::problem::{Problem, Report};
use super::word::{self, words};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

words! {
    /// What to do with a service an earlier run left `upgraded` (neither finished nor
    /// rolled back) before upgrading it again.
    #[derive(Default)]
    pub enum LeftoverAction ("an action for a leftover upgrade") {
        /// Finish the earlier upgrade: its image stays.
        #[default]
        Finish = "finish",
        /// Roll the earlier upgrade back to the image before it.
        Rollback = "rollback",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RancherConfig {
    /// e.g. `https://rancher.example.com` (the API is under `/v2-beta`).
    pub url: String,
    /// Environment (project) id, e.g. `1a5`.
    pub project_id: String,
    /// Service id, e.g. `1s12`: one service for every project of the environment.
    /// Without it each project has its own service, found (or created) by name.
    pub service_id: Option<String>,
    /// The stack of a project's service when there is no `service_id`; `{project}`
    /// and `{env}` are replaced.
    pub stack: String,
    /// The service's name in that stack; `{project}` and `{env}` are replaced.
    pub service: String,
    pub access_key: String,
    pub secret_key: Secret<String>,
    pub batch_size: u32,
    pub interval_millis: u64,
    pub start_first: bool,
    /// Longest wait for a state change (upgrading → upgraded, finishing, rolling back).
    pub timeout_secs: u64,
    pub on_leftover_upgraded: LeftoverAction,
    /// Pre-pull also on the environment's active Rancher hosts (the hosts API), not only
    /// on the listed `hosts`.
    pub discover_hosts: bool,
    /// How a discovered host's Docker engine is reached; `{address}` is its agent IP.
    pub host_url: String,
    /// TLS client certificates for discovered hosts (`ca.pem`, `cert.pem`, `key.pem`).
    pub host_tls_dir: Option<PathBuf>,
    /// PEM of the CA that signed the Rancher server's certificate, trusted besides the
    /// public roots.
    pub ca_file: Option<PathBuf>,
}

impl RancherConfig {
    /// What is wrong in the table at `at` (`environments.<name>.rancher`).
    pub(super) fn check(&self, at: &str, out: &mut Vec<Problem>) {
        let key = |field: &str| format!("{at}.{field}");
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            out.bad(
                key("url"),
                format!("`{}` must start with http:// or https://", self.url),
            );
        }
        for (field, value) in [
            ("project_id", &self.project_id),
            ("access_key", &self.access_key),
        ] {
            if value.trim().is_empty() {
                out.bad(key(field), "must not be empty");
            }
        }
        if self
            .service_id
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            out.bad(
                key("service_id"),
                "must not be empty; leave it out to find (or create) each project's service by `stack` and `service` name",
            );
        }
        if self.timeout_secs == 0 {
            out.bad(key("timeout_secs"), "must be above 0");
        }
        if self.batch_size == 0 {
            out.bad(key("batch_size"), "must be above 0");
        }
        if let Some(why) = self.ca_file.as_deref().and_then(pem_certificate_problem) {
            out.bad(key("ca_file"), why);
        }
    }
}

impl RancherConfig {
    /// `(stack, service)` of `project`'s service in `env`, when it is found by name.
    pub fn names(&self, project: &str, env: &str) -> (String, String) {
        let fill = |t: &str| t.replace("{project}", project).replace("{env}", env);
        (fill(&self.stack), fill(&self.service))
    }

    /// What is wrong with the names `project`'s service would have in `env` (Rancher
    /// takes letters, digits and `-`, not at either end).
    pub fn check_names(&self, project: &str, env: &str, out: &mut Vec<Problem>) {
        if self.service_id.is_some() {
            return;
        }
        let (stack, service) = self.names(project, env);
        for (field, name) in [("stack", stack), ("service", service)] {
            if let Some(why) = rancher_name_problem(&name) {
                out.bad(
                    format!("environments.{env}.rancher.{field}"),
                    format!(
                        "gives `{name}` for project {project}: {why}; set a name Rancher accepts"
                    ),
                );
            }
        }
    }
}

/// Why Rancher would refuse `name` for a stack or service.
fn rancher_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        return Some("a name has 1 to 63 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Some("a name has only letters, digits and `-`");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("a name does not start or end with `-`");
    }
    None
}

/// The table as written: `on_leftover_upgraded` is `finish` or `rollback`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RancherFile {
    url: String,
    project_id: String,
    #[serde(default)]
    service_id: Option<String>,
    #[serde(default = "default_name")]
    stack: String,
    #[serde(default = "default_name")]
    service: String,
    access_key: String,
    secret_key: Secret<String>,
    #[serde(default = "default_batch")]
    batch_size: u32,
    #[serde(default = "default_interval")]
    interval_millis: u64,
    #[serde(default)]
    start_first: bool,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_leftover")]
    on_leftover_upgraded: String,
    #[serde(default)]
    discover_hosts: bool,
    #[serde(default = "default_host_url")]
    host_url: String,
    #[serde(default)]
    host_tls_dir: Option<PathBuf>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

fn default_name() -> String {
    "{project}".into()
}

fn default_batch() -> u32 {
    1
}

fn default_interval() -> u64 {
    2000
}

fn default_timeout() -> u64 {
    300
}

fn default_leftover() -> String {
    LeftoverAction::default().to_string()
}

fn default_host_url() -> String {
    "tcp://{address}:2376".into()
}

impl RancherFile {
    pub(super) fn parse(self, at: &str, out: &mut Vec<Problem>) -> RancherConfig {
        let on_leftover_upgraded = word::parse(
            &self.on_leftover_upgraded,
            format!("{at}.on_leftover_upgraded"),
            LeftoverAction::Finish,
            out,
        );
        RancherConfig {
            url: self.url,
            project_id: self.project_id,
            service_id: self.service_id,
            stack: self.stack,
            service: self.service,
            access_key: self.access_key,
            secret_key: self.secret_key,
            batch_size: self.batch_size,
            interval_millis: self.interval_millis,
            start_first: self.start_first,
            timeout_secs: self.timeout_secs,
            on_leftover_upgraded,
            discover_hosts: self.discover_hosts,
            host_url: self.host_url,
            host_tls_dir: self.host_tls_dir,
            ca_file: self.ca_file,
        }
    }
}

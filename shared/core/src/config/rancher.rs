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
    /// Service id, e.g. `1s12`.
    pub service_id: String,
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
            ("service_id", &self.service_id),
            ("access_key", &self.access_key),
        ] {
            if value.trim().is_empty() {
                out.bad(key(field), "must not be empty");
            }
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

/// The table as written: `on_leftover_upgraded` is `finish` or `rollback`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RancherFile {
    url: String,
    project_id: String,
    service_id: String,
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

//! `[hooks]`: the hook-receiver's sources. A source without its secret is disabled: its
//! endpoint answers 404 and publishes nothing. (The front door's limits are checked in
//! `door`.)

use super::door::{
    DEFAULT_AUTH_FAILURES_PER_MINUTE, DEFAULT_BODY_TIMEOUT_SECS, DEFAULT_HEADER_TIMEOUT_SECS,
    DEFAULT_MAX_CONNECTIONS,
};
use super::problem::{Problem, Report};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// A delivery seen again within this window returns the original run ids.
    pub dedup_window_secs: u64,
    /// Compared with `X-Gitlab-Token`.
    pub gitlab_token: Option<Secret<String>>,
    /// Key of GitHub's `X-Hub-Signature-256` HMAC.
    pub github_secret: Option<Secret<String>>,
    /// Key of Gitea's `X-Gitea-Signature` HMAC.
    pub gitea_secret: Option<Secret<String>>,
    /// Bearer token of the plain git post-receive script.
    pub git_token: Option<Secret<String>>,
    /// Bearer token of the SVN post-commit script.
    pub svn_token: Option<Secret<String>>,
    /// The whole `Authorization` header Harbor sends ("Auth Header" in its webhook policy).
    pub harbor_auth: Option<Secret<String>>,
    /// Bearer token for manual triggers (`POST /hooks/manual`).
    pub manual_token: Option<Secret<String>>,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections one client address (IPv6: its /64) may have open; more are
    /// answered 503 and closed (0: no limit). Unset: 64, or `max_connections` if lower;
    /// read it with `connections_per_address()`.
    pub max_connections_per_address: Option<usize>,
    /// Reverse proxies (addresses or CIDR blocks) whose connections are not capped per
    /// address and whose `X-Forwarded-For` names the client for the failed-auth limit.
    pub trusted_proxies: Vec<String>,
    /// A request's headers (and a TLS handshake) must arrive within this time.
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this time (408 after).
    pub body_timeout_secs: u64,
    /// Failed authentications one address may make per minute before 429 (0: no limit).
    pub auth_failures_per_minute: u32,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            dedup_window_secs: 3600,
            gitlab_token: None,
            github_secret: None,
            gitea_secret: None,
            git_token: None,
            svn_token: None,
            harbor_auth: None,
            manual_token: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: None,
            trusted_proxies: Vec::new(),
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
        }
    }
}

impl HooksConfig {
    /// The sources' secrets by key, set or not.
    pub(super) fn secrets(&self) -> [(&'static str, &Option<Secret<String>>); 7] {
        [
            ("gitlab_token", &self.gitlab_token),
            ("github_secret", &self.github_secret),
            ("gitea_secret", &self.gitea_secret),
            ("git_token", &self.git_token),
            ("svn_token", &self.svn_token),
            ("harbor_auth", &self.harbor_auth),
            ("manual_token", &self.manual_token),
        ]
    }

    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.max_body_bytes < 1024 {
            out.bad("hooks.max_body_bytes", "must be at least 1024");
        }
        for (key, secret) in self.secrets() {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
                out.bad(
                    format!("hooks.{key}"),
                    "must be at least 8 characters (or left out to disable the source)",
                );
            }
        }
    }
}

//! `[services.<name>]`: per-service settings, keyed by service name with `_` for `-`
//! (`hook_receiver`, `rancher_updater`) so environment overrides can name them.

use super::problem::{Problem, Report};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub admin_listen: Option<SocketAddr>,
    /// Address of the public HTTP endpoint (hook-receiver).
    pub listen: Option<SocketAddr>,
    /// Deliveries handled at once by one process.
    pub prefetch: Option<u16>,
    /// Hard limit of one handler run; must stay below `broker.consumer_timeout_secs`.
    pub handler_timeout_secs: Option<u64>,
    /// How long SIGTERM waits for in-flight handlers before requeueing them.
    pub shutdown_grace_secs: Option<u64>,
    /// This service's own broker user (`amqp://ferry-builder:...@host/vhost`), instead
    /// of `broker.url`'s: see `ferry broker users`.
    pub broker_url: Option<Secret<String>>,
    /// hook-receiver: serve HTTPS with this PEM certificate chain (and `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// hook-receiver: the PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// hook-receiver: serve the operator API (`/api`) only here, not on `listen`.
    pub api_listen: Option<SocketAddr>,
}

/// `hook-receiver` → `hook_receiver`: the key of a service under `[services]`.
pub fn service_key(name: &str) -> String {
    name.replace('-', "_")
}

/// Every service is known, and none may hold a handler past the broker's consumer timeout.
pub(super) fn check(
    services: &BTreeMap<String, ServiceConfig>,
    consumer_timeout_secs: u64,
    out: &mut Vec<Problem>,
) {
    for (name, s) in services {
        let at = format!("services.{name}");
        if !crate::SERVICES.iter().any(|svc| service_key(svc) == *name) {
            out.bad(
                &at,
                format!(
                    "no such service; known: {}",
                    crate::SERVICES.map(service_key).join(", ")
                ),
            );
        }
        if s.prefetch == Some(0) {
            out.bad(format!("{at}.prefetch"), "must be at least 1");
        }
        if let Some(t) = s.handler_timeout_secs
            && (t == 0 || t >= consumer_timeout_secs)
        {
            out.bad(
                format!("{at}.handler_timeout_secs"),
                format!(
                    "{t} s must be between 1 and broker.consumer_timeout_secs ({consumer_timeout_secs} s); \
                     for longer work raise RabbitMQ's consumer_timeout and broker.consumer_timeout_secs together"
                ),
            );
        }
    }
}

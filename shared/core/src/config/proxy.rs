//! `[proxy]` and each project's `container.proxy_ports`: the reverse proxy (HAProxy) Ferry
//! runs on every Docker host in front of the environments that give a stable port, so a
//! switch moves traffic through the proxy and drains the old release before it stops.

use super::problem::{Problem, Report};
use super::{FerryConfig, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// The proxy's image on the hosts (built from `deploy/proxy/Dockerfile`).
    pub image: String,
    /// The proxy's container on each host (two Ferry installations sharing hosts need
    /// two names).
    pub container: String,
    /// Where the stable ports listen on each host.
    pub bind_address: String,
    /// Longest wait for the old release's requests in flight to finish before it is
    /// taken out regardless (and its remaining connections closed).
    pub drain_timeout_secs: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            image: "ferry/haproxy:2.6".into(),
            container: "ferry-proxy".into(),
            bind_address: "0.0.0.0".into(),
            drain_timeout_secs: 30,
        }
    }
}

impl ProxyConfig {
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.image.trim().is_empty() {
            out.bad("proxy.image", "must name the proxy's image");
        }
        if self.container.is_empty()
            || !self
                .container
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            out.bad(
                "proxy.container",
                "must be a container name (letters, digits, `_.-`)",
            );
        }
        if self.bind_address.parse::<std::net::IpAddr>().is_err() {
            out.bad(
                "proxy.bind_address",
                format!("`{}` is not an IP address", self.bind_address),
            );
        }
        if self.drain_timeout_secs == 0 {
            out.bad("proxy.drain_timeout_secs", "must be above 0");
        }
    }
}

impl FerryConfig {
    /// The stable port of `project` in `env`, when the proxy fronts it there.
    pub fn proxy_port(&self, project: &str, env: &str) -> Option<u16> {
        self.projects
            .get(project)?
            .container
            .proxy_ports
            .get(env)
            .copied()
    }

    /// Every project's `proxy_ports`: an environment of the project on Docker hosts, a
    /// port that is not one of its slots, and no two stable ports alike on one host.
    pub(super) fn proxy_port_problems(&self, out: &mut Vec<Problem>) {
        let mut taken: BTreeMap<(String, u16), String> = BTreeMap::new();
        for (name, p) in &self.projects {
            for env in &p.environments {
                if self
                    .environments
                    .get(env)
                    .is_some_and(|e| e.canary.is_some())
                    && !p.container.proxy_ports.contains_key(env)
                {
                    out.bad(
                        format!("projects.{name}.container.proxy_ports"),
                        format!(
                            "{env} runs canaries, which go through the proxy: give {name} a stable port there ({env} = <port>)"
                        ),
                    );
                }
            }
            for (env, port) in &p.container.proxy_ports {
                let key = format!("projects.{name}.container.proxy_ports.{env}");
                // The names make the proxy's backend and server names, which go into its
                // configuration and its runtime commands: nothing there may separate words.
                if let Some(bad) = [name, env].into_iter().find(|n| !proxy_safe(n)) {
                    out.bad(
                        key,
                        format!(
                            "`{bad}` cannot name a proxy backend: use letters, digits and `_.-`"
                        ),
                    );
                    continue;
                }
                let Some(e) = self
                    .environments
                    .get(env)
                    .filter(|_| p.environments.contains(env))
                else {
                    out.bad(key, format!("`{env}` is not an environment of {name}"));
                    continue;
                };
                if !matches!(e.target, Target::Docker) {
                    out.bad(
                        key,
                        "the proxy fronts Docker hosts only (target = \"docker\")",
                    );
                    continue;
                }
                let slots = e.ports.as_ref().unwrap_or(&p.container.ports);
                if *port == 0 || slots.contains(port) {
                    out.bad(
                        key,
                        format!("{port} must be a port other than the blue/green slots {slots:?}"),
                    );
                    continue;
                }
                for host in &e.hosts {
                    let owner = format!("{name} in {env}");
                    if let Some(other) = taken.insert((host.clone(), *port), owner.clone())
                        && other != owner
                    {
                        out.bad(
                            key.clone(),
                            format!("port {port} on host {host} is also {other}'s stable port"),
                        );
                    }
                }
            }
        }
    }
}

/// Whether `name` can stand in HAProxy's configuration and runtime commands as it is.
fn proxy_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

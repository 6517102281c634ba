//! `[proxy]` and each project's `container.proxy_ports`: the reverse proxy (HAProxy) Ferry
//! runs on every Docker host in front of the environments that give a stable port, so a
//! switch moves traffic through the proxy and drains the old release before it stops.

use super::problem::{Problem, Report};
use super::{FerryConfig, Target};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Where each host's proxy serves its counters to Prometheus (HAProxy's built-in
    /// exporter, `GET /metrics` on `bind_address`): what a canary's `prometheus` query
    /// reads. None: no exporter.
    pub metrics_port: Option<u16>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            image: "ferry/haproxy:2.6".into(),
            container: "ferry-proxy".into(),
            bind_address: "0.0.0.0".into(),
            drain_timeout_secs: 30,
            metrics_port: None,
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
        if self.metrics_port == Some(0) {
            out.bad("proxy.metrics_port", "must be a port (or unset)");
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
    /// port that is not one of its slots, and no two stable ports alike on one host; and
    /// `proxy.metrics_port` none of the ports on a host that runs the proxy.
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
        if let Some(metrics) = self.proxy.metrics_port.filter(|p| *p != 0) {
            self.metrics_port_problems(metrics, &taken, out);
        }
    }

    /// `proxy.metrics_port` is bound by the proxy on every host with a stable port: it
    /// must be neither a stable port there (`taken`: host and port → whose) nor a slot
    /// of any project deployed there.
    fn metrics_port_problems(
        &self,
        metrics: u16,
        taken: &BTreeMap<(String, u16), String>,
        out: &mut Vec<Problem>,
    ) {
        let proxied: BTreeSet<&str> = taken.keys().map(|(host, _)| host.as_str()).collect();
        let mut clashes = BTreeSet::new();
        for ((host, port), owner) in taken {
            if *port == metrics {
                clashes.insert(format!("on host {host} it is {owner}'s stable port"));
            }
        }
        for (name, p) in &self.projects {
            for env in &p.environments {
                let Some(e) = self.environments.get(env) else {
                    continue;
                };
                if !matches!(e.target, Target::Docker) {
                    continue;
                }
                let slots = e.ports.as_ref().unwrap_or(&p.container.ports);
                if !slots.contains(&metrics) {
                    continue;
                }
                for host in e.hosts.iter().filter(|h| proxied.contains(h.as_str())) {
                    clashes.insert(format!(
                        "on host {host} it is a blue/green slot of {name} in {env}"
                    ));
                }
            }
        }
        for clash in clashes {
            out.bad(
                "proxy.metrics_port",
                format!("the proxy's exporter cannot listen on {metrics}: {clash}"),
            );
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

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, FerryConfig, Problem};

    /// `a` has a stable port on h1; `b` runs on h1 and h2 without one; `c` on h3 only.
    const BASE: &str = r#"
        [docker_hosts.h1]
        url = "unix:///run/docker.sock"
        [docker_hosts.h2]
        url = "unix:///run/docker2.sock"
        [docker_hosts.h3]
        url = "unix:///run/docker3.sock"
        [environments.staging]
        hosts = ["h1"]
        [environments.production]
        hosts = ["h1", "h2"]
        [environments.other]
        hosts = ["h3"]
        [projects.a]
        image = "a/web"
        environments = ["staging"]
        source = { kind = "svn", url = "svn://x/a" }
        [projects.a.container]
        ports = [9001, 9002]
        proxy_ports = { staging = 8080 }
        [projects.b]
        image = "b/web"
        environments = ["production"]
        source = { kind = "svn", url = "svn://x/b" }
        [projects.b.container]
        ports = [9003, 9004]
        [projects.c]
        image = "c/web"
        environments = ["other"]
        source = { kind = "svn", url = "svn://x/c" }
        [projects.c.container]
        ports = [9005, 9006]
    "#;

    fn load(metrics_port: &str) -> Result<FerryConfig, Vec<Problem>> {
        let text = format!("[proxy]\n{metrics_port}\n{BASE}");
        match FerryConfig::from_toml_with_env(&text, std::path::Path::new("t.toml")) {
            Ok(c) => Ok(c),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_exporter_is_off_unless_given_a_port() {
        assert_eq!(load("").unwrap().proxy.metrics_port, None);
        assert_eq!(
            load("metrics_port = 8404").unwrap().proxy.metrics_port,
            Some(8404)
        );
        // A slot of a project on a host without a proxy is free for the exporter.
        assert!(load("metrics_port = 9005").is_ok());
    }

    #[test]
    fn the_exporter_port_is_none_of_the_ports_on_a_host_with_a_proxy() {
        for (port, says) in [
            ("0", "must be a port"),
            ("8080", "on host h1 it is a in staging's stable port"),
            ("9002", "on host h1 it is a blue/green slot of a in staging"),
            (
                "9003",
                "on host h1 it is a blue/green slot of b in production",
            ),
        ] {
            let problems = load(&format!("metrics_port = {port}")).unwrap_err();
            assert!(
                problems
                    .iter()
                    .all(|p| p.key == "proxy.metrics_port" && p.message.contains(says)),
                "{port}: {problems:?}"
            );
            assert_eq!(problems.len(), 1, "{port}: {problems:?}");
        }
    }
}

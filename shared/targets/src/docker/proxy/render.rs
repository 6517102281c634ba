//! The host's `haproxy.cfg`, rendered from Ferry's configuration alone: a frontend on
//! each stable port and a backend per (project, environment) the host serves, with a
//! server per blue/green slot, and the Prometheus exporter's frontend when
//! `proxy.metrics_port` is set. The config never says which slot is live (no
//! `disabled`, one weight for all): that is runtime state, kept in the per-backend state
//! files HAProxy reads at start, so a reload or a restart puts back the last split.

use ferry_shared::config::{ContainerConfig, FerryConfig, Target};
use std::fmt::Write;

/// Where the proxy keeps one file per backend (`show servers state <backend>`).
pub(super) const STATE_DIR: &str = "/var/lib/haproxy/state";
pub(super) const SOCKET: &str = "/run/haproxy/admin.sock";
/// Every slot's weight in the config; a live slot has it at runtime.
pub(super) const FULL_WEIGHT: u32 = 100;

/// The backend of `project` in `env`.
pub fn backend(project: &str, env: &str) -> String {
    format!("be_{project}_{env}")
}

/// The server of one slot: replica `replica`, on `port`.
pub fn server(replica: u32, port: u16) -> String {
    format!("r{replica}-{port}")
}

/// The configuration of the proxy on `host`: every (project, environment) with a stable
/// port whose environment has this host.
pub(super) fn render(cfg: &FerryConfig, host: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Written by Ferry: edits are lost at the next deploy.\n\
         global\n    master-worker\n    noreuseport\n\
         \x20   stats socket {SOCKET} mode 600 level admin\n    stats timeout 30s\n\
         \x20   server-state-base {STATE_DIR}\n    hard-stop-after {hard}s\n\
         \x20   log stdout format raw local0 notice\n\
         defaults\n    mode http\n    log global\n    option httplog\n\
         \x20   option idle-close-on-response\n    load-server-state-from-file local\n\
         \x20   balance roundrobin\n    retries 3\n    option redispatch 1\n\
         \x20   # Never on status codes: a canary's 5xx must count against it.\n\
         \x20   retry-on conn-failure empty-response\n\
         \x20   timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
         \x20   timeout queue 5s\n    timeout http-request 10s\n    timeout http-keep-alive 5s\n\
         \x20   default-server check inter 1s fastinter 500ms downinter 2s rise 2 fall 2 weight {FULL_WEIGHT}\n",
        hard = cfg.proxy.drain_timeout_secs + 30,
    );
    if let Some(port) = cfg.proxy.metrics_port {
        // HAProxy's built-in exporter (`haproxy_server_*{proxy="be_<project>_<env>",
        // server="r<replica>-<port>"}`), for a canary's Prometheus query. Its own frontend
        // name cannot be a stable port's (those are `fe_<project>_<env>`).
        let _ = write!(
            out,
            "frontend metrics\n    bind {bind}:{port}\n    no log\n\
             \x20   http-request use-service prometheus-exporter if {{ path /metrics }}\n",
            bind = cfg.proxy.bind_address,
        );
    }
    for (project, p) in &cfg.projects {
        for (env, port) in &p.container.proxy_ports {
            let Some(e) = cfg.environments.get(env) else {
                continue;
            };
            if !matches!(e.target, Target::Docker) || !e.hosts.iter().any(|h| h == host) {
                continue;
            }
            let mut container = p.container.clone();
            if let Some(ports) = &e.ports {
                container.ports.clone_from(ports);
            }
            section(&mut out, cfg, &backend(project, env), *port, &container);
        }
    }
    out
}

fn section(out: &mut String, cfg: &FerryConfig, backend: &str, port: u16, c: &ContainerConfig) {
    let bind = &cfg.proxy.bind_address;
    let _ = write!(
        out,
        "frontend fe{rest}\n    bind {bind}:{port}\n    default_backend {backend}\n\
         backend {backend}\n",
        rest = &backend[2..],
    );
    if c.health_command.is_empty() {
        let _ = writeln!(
            out,
            "    option httpchk GET {}\n    http-check expect status 200-399",
            c.health_path
        );
    }
    // A killed connection is replayed on the other slot only for requests that may be.
    out.push_str("    http-request disable-l7-retry if !METH_GET !METH_HEAD\n");
    for (i, pair) in c.ports.chunks(2).enumerate() {
        for slot in pair {
            let _ = writeln!(
                out,
                "    server {} 127.0.0.1:{slot}",
                server(i as u32, *slot)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_stable_port_gets_a_frontend_and_each_slot_a_server() {
        let cfg = FerryConfig::from_toml_with_env(
            r#"
            [proxy]
            bind_address = "127.0.0.1"
            [docker_hosts.h1]
            url = "unix:///run/docker.sock"
            [docker_hosts.h2]
            url = "unix:///run/docker2.sock"
            [environments.staging]
            hosts = ["h1"]
            [environments.production]
            hosts = ["h2"]
            [projects.shop]
            image = "shop/web"
            environments = ["staging", "production"]
            source = { kind = "svn", url = "svn://x/shop" }
            [projects.shop.container]
            ports = [9001, 9002, 9003, 9004]
            proxy_ports = { staging = 8080 }
            "#,
            Path::new("test.toml"),
        )
        .unwrap();
        let text = render(&cfg, "h1");
        assert!(text.contains("frontend fe_shop_staging\n    bind 127.0.0.1:8080\n"));
        assert!(text.contains("option httpchk GET /healthz"));
        for s in ["r0-9001 127.0.0.1:9001", "r0-9002", "r1-9003", "r1-9004"] {
            assert!(text.contains(&format!("server {s}")), "{s}: {text}");
        }
        assert!(!text.contains("disabled"));
        // production has no stable port, and h2 serves nothing of shop's through it.
        assert!(!render(&cfg, "h2").contains("backend"));
        // No exporter unless asked for.
        assert!(!text.contains("prometheus-exporter"));
    }

    #[test]
    fn the_metrics_port_gets_the_exporter_on_its_own_frontend() {
        let cfg = FerryConfig::from_toml_with_env(
            r#"
            [proxy]
            bind_address = "127.0.0.1"
            metrics_port = 8404
            [docker_hosts.h1]
            url = "unix:///run/docker.sock"
            [environments.staging]
            hosts = ["h1"]
            [projects.shop]
            image = "shop/web"
            environments = ["staging"]
            source = { kind = "svn", url = "svn://x/shop" }
            [projects.shop.container]
            ports = [9001, 9002]
            proxy_ports = { staging = 8080 }
            "#,
            Path::new("test.toml"),
        )
        .unwrap();
        let text = render(&cfg, "h1");
        assert!(
            text.contains(
                "frontend metrics\n    bind 127.0.0.1:8404\n    no log\n    \
                 http-request use-service prometheus-exporter if { path /metrics }\n"
            ),
            "{text}"
        );
        // The stable port's frontend and backend are as without it.
        assert!(text.contains("frontend fe_shop_staging\n    bind 127.0.0.1:8080\n"));
        assert!(text.contains("server r0-9002 127.0.0.1:9002"));
    }
}

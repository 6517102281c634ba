//! The monitor task: health checks run inside the containers, and running containers
//! that exited.

use super::LABEL_SIM;
use super::state::{Instance, Shared, lock};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct HealthSpec {
    port: u64,
    /// `None`: a TCP check (no `requestLine`).
    request: Option<(String, String)>,
    interval: Duration,
    /// `responseTimeout`.
    timeout: Duration,
    healthy: u32,
    unhealthy: u32,
    initializing: Option<Duration>,
    reinitializing: Option<Duration>,
}

impl HealthSpec {
    /// Defaults where a field is missing: the values of Rancher's UI and compose examples.
    fn parse(hc: &Value) -> Self {
        let num = |k: &str, default: u64| hc[k].as_u64().filter(|n| *n > 0).unwrap_or(default);
        let request = hc["requestLine"]
            .as_str()
            .and_then(|l| l.lines().next())
            .and_then(|l| {
                let mut words = l.split_whitespace();
                let first = words.next()?;
                let (method, path) = if first.starts_with('/') {
                    ("GET".to_owned(), first.to_owned())
                } else {
                    (first.to_uppercase(), words.next().unwrap_or("/").to_owned())
                };
                let path = if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                };
                Some((method, path))
            });
        let ms = |k: &str| hc[k].as_u64().filter(|n| *n > 0).map(Duration::from_millis);
        Self {
            port: hc["port"].as_u64().unwrap_or(80),
            request,
            interval: Duration::from_millis(num("interval", 2000).max(500)),
            timeout: Duration::from_millis(num("responseTimeout", 2000)),
            healthy: num("healthyThreshold", 2) as u32,
            unhealthy: num("unhealthyThreshold", 3) as u32,
            initializing: ms("initializingTimeout"),
            reinitializing: ms("reinitializingTimeout"),
        }
    }

    /// One check from inside the container: (passed, `/bin/busybox wget` was needed,
    /// the container is not running).
    fn check(&self, docker: &str, container: &str, busybox: bool) -> (bool, bool, bool) {
        let path = self
            .request
            .as_ref()
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        // Not wget's `-T`: busybox 1.35's static wget crashes with it (exit 139). The
        // timeout is kept on the `docker exec` instead, plus what `docker exec` takes.
        let timeout = self.timeout + Duration::from_secs(2);
        let run = |busybox: bool| {
            let mut args = vec!["exec", container];
            if busybox {
                args.push("/bin/busybox");
            }
            args.extend(["wget", "-q", "-O", "/dev/null"]);
            match self.request.as_ref().map(|(m, _)| m.as_str()) {
                Some("HEAD") => args.push("--spider"),
                Some("POST") => args.push("--post-data="),
                _ => {}
            }
            args.push(&url);
            docker_within(docker, &args, timeout)
        };
        let mut busybox = busybox;
        let mut out = run(busybox);
        if let Err(e) = &out
            && !busybox
            && (e.contains("executable file not found") || e.contains("no such file"))
        {
            busybox = true;
            out = run(true);
        }
        let passed = match (&out, &self.request) {
            (Ok(_), _) => true,
            (Err(_), Some(_)) => false,
            // TCP: any answer will do, even one that is not HTTP.
            (Err(e), None) => {
                !(e.contains("refused")
                    || e.contains("can't connect")
                    || e.contains("timed out")
                    || e.contains("is not running"))
            }
        };
        let exited = matches!(&out, Err(e) if e.contains("is not running"));
        (passed, busybox, exited)
    }
}

impl Instance {
    fn record_check(&mut self, passed: bool, spec: &HealthSpec) {
        let Some(health) = self.health.clone() else {
            return;
        };
        if passed {
            self.checks.successes += 1;
            self.checks.failures = 0;
            if health != "healthy" && self.checks.successes >= spec.healthy {
                self.health = Some("healthy".into());
            }
            return;
        }
        self.checks.failures += 1;
        self.checks.successes = 0;
        match health.as_str() {
            "initializing" | "reinitializing" => {
                let timeout = if health == "initializing" {
                    spec.initializing
                } else {
                    spec.reinitializing
                };
                if timeout.is_some_and(|t| self.checks.since.elapsed() >= t) {
                    self.health = Some("unhealthy".into());
                }
            }
            "healthy" if self.checks.failures >= spec.unhealthy => {
                self.health = Some("unhealthy".into());
            }
            _ => {}
        }
    }
}

/// `docker -H host args...`, killed after `timeout`; `Err` holds stderr and the status.
fn docker_within(host: &str, args: &[&str], timeout: Duration) -> Result<(), String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running docker: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}: {stderr}"))
    }
}

struct CheckJob {
    id: String,
    start_count: u32,
    docker: String,
    container: String,
    spec: HealthSpec,
    busybox: bool,
}

/// Container states on a host, by name, for this simulator's containers.
fn container_states(docker: &str, tag: &str) -> Option<HashMap<String, String>> {
    let filter = format!("label={LABEL_SIM}={tag}");
    let out = crate::docker(
        docker,
        None,
        &[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}}\t{{.State}}",
        ],
    )
    .ok()?;
    Some(
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
            .collect(),
    )
}

/// Every 500 ms: run the health checks that are due; every 2 s: see which running
/// containers exited.
pub(super) async fn monitor(shared: Shared) {
    let mut tick: u64 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tick += 1;
        let (tag, polls, checks) = {
            let mut guard = lock(&shared);
            let sim = &mut *guard;
            if sim.closed {
                return;
            }
            let mut polls = vec![];
            if tick.is_multiple_of(4) {
                for (n, host) in sim.hosts.iter().enumerate() {
                    let Some(docker) = &host.docker else {
                        continue;
                    };
                    let running: Vec<(String, String, u32)> = sim
                        .instances
                        .iter()
                        .filter(|i| i.host == n && i.state == "running")
                        .map(|i| (i.id.clone(), i.container.clone(), i.start_count))
                        .collect();
                    if !running.is_empty() {
                        polls.push((docker.clone(), running));
                    }
                }
            }
            let now = Instant::now();
            let mut checks = vec![];
            for i in sim.instances.iter_mut() {
                if i.state != "running" || i.health.is_none() || i.checks.next > now {
                    continue;
                }
                let Some(docker) = sim.hosts[i.host].docker.clone() else {
                    continue;
                };
                let spec = HealthSpec::parse(&i.launch["healthCheck"]);
                i.checks.next = now + spec.interval;
                checks.push(CheckJob {
                    id: i.id.clone(),
                    start_count: i.start_count,
                    docker,
                    container: i.container.clone(),
                    spec,
                    busybox: i.checks.busybox,
                });
            }
            (sim.tag.clone(), polls, checks)
        };
        if polls.is_empty() && checks.is_empty() {
            continue;
        }
        let polled = futures_util::future::join_all(polls.into_iter().map(|(docker, running)| {
            let tag = tag.clone();
            tokio::task::spawn_blocking(move || (running, container_states(&docker, &tag)))
        }));
        let checked = futures_util::future::join_all(checks.into_iter().map(|job| {
            tokio::task::spawn_blocking(move || {
                let (passed, busybox, exited) =
                    job.spec.check(&job.docker, &job.container, job.busybox);
                (job, passed, busybox, exited)
            })
        }));
        let (polled, checked) = tokio::join!(polled, checked);
        let mut sim = lock(&shared);
        for (running, states) in polled.into_iter().flatten() {
            let Some(states) = states else {
                continue;
            };
            for (id, container, start_count) in running {
                if states.get(&container).is_some_and(|s| s == "running") {
                    continue;
                }
                if let Some(i) = sim.instance_mut(&id)
                    && i.state == "running"
                    && i.start_count == start_count
                {
                    i.state = "stopped".into();
                }
            }
        }
        for (job, passed, busybox, exited) in checked.into_iter().flatten() {
            if let Some(i) = sim.instance_mut(&job.id)
                && i.state == "running"
                && i.start_count == job.start_count
            {
                if exited {
                    // Rancher hears of an exit from Docker's events, before any check.
                    i.state = "stopped".into();
                } else {
                    i.checks.busybox = busybox;
                    i.record_check(passed, &job.spec);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_checks_parse_request_lines() {
        let s = HealthSpec::parse(
            &json!({ "port": 8080, "requestLine": "GET /healthz HTTP/1.0", "interval": 100 }),
        );
        assert_eq!(s.request, Some(("GET".into(), "/healthz".into())));
        assert_eq!(s.interval, Duration::from_millis(500));
        assert_eq!((s.healthy, s.unhealthy), (2, 3));
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert!(HealthSpec::parse(&json!({ "port": 80 })).request.is_none());
    }
}

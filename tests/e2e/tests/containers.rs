//! Ferry as its users run it: the repository's own `docker-compose.yml`, with the images
//! `deploy/images.sh` builds, on a host of its own (the compose host: a network namespace
//! with a Docker engine, two deploy hosts behind TLS, svnserve and a git server; see
//! `tests/lib/compose-host.sh`), shipping the PHP application our users ship
//! (`deploy/examples/shop`: nginx + php-fpm, composer, esbuild, ops' `.env` from the config
//! repo, which the tests check). SVN commits go through the containers to production, past
//! the staging tests and an approval hold, while each Ferry service is restarted in turn and
//! the whole stack is taken down and up again: no run is lost, a hold placed before `down`
//! is still there to approve after `up`, the history keeps every run, and production serves
//! the newest run. The stack's own Prometheus (`deploy/prometheus`) scrapes all seven
//! services with the shipped configuration, has the shipped alerts loaded and not firing,
//! and counts exactly the production deployments the test made.

use ferry_testkit::harness_var;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICES: [&str; 7] = [
    "hook-receiver",
    "builder",
    "pusher",
    "puller",
    "rancher-updater",
    "tester",
    "notifier",
];

/// How long one run may take from commit to its approval hold (or to production).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long Prometheus may take to show what happened: a scrape every 15 s
/// (prometheus.yml's scrape_interval), a DNS lookup of the services every 30 s, a rule
/// evaluation every 30 s.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);

struct Stack {
    dir: PathBuf,
    api: String,
    token: String,
    /// The compose host's address: the production Docker host's, and where the stack's
    /// ports are published.
    production: String,
    /// The stack's Prometheus, `http://<compose host>:9090`.
    prometheus: String,
    http: reqwest::Client,
}

/// A series' value in an instant query's answer.
fn sample(series: &Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}

/// Group names and the number of rules in the shipped `deploy/prometheus/alerts.yml`.
fn shipped_rules() -> (Vec<String>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path).expect("deploy/prometheus/alerts.yml");
    let groups = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - name: "))
        .map(|n| n.trim().to_owned())
        .collect();
    let rules = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("- alert: ") || l.starts_with("- record: "))
        .count();
    (groups, rules)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../support/compose-stack.sh")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `KEY=value` line of the stack's env file.
fn env_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .unwrap_or_else(|| panic!("{key} missing from the stack's env file"))
        .to_owned()
}

impl Stack {
    fn prepare() -> Self {
        let state = PathBuf::from(harness_var("FERRY_TEST_STATE"));
        harness_var("FERRY_TEST_COMPOSE_DOCKER_HOST");
        let dir = state.join("compose-stack");
        run(Command::new(script())
            .arg("prepare")
            .arg(&dir)
            // The suite's own (debug) build: a release build would double CI's build time.
            .env("FERRY_IMAGES_PROFILE", "dev"));
        let env = std::fs::read_to_string(dir.join("env")).expect("the stack's env file");
        let addr = env_value(&env, "FERRY_COMPOSE_ADDR");
        Self {
            api: env_value(&env, "FERRY_COMPOSE_API"),
            token: env_value(&env, "FERRY_COMPOSE_TOKEN"),
            prometheus: format!("http://{addr}:9090"),
            production: addr,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// Where things are mounted in a service's container.
    fn mounts(&self, service: &str) -> Vec<String> {
        let id = self.compose(&["ps", "-q", service]);
        let out = run(Command::new("docker")
            .args([
                "-H",
                &harness_var("FERRY_TEST_COMPOSE_DOCKER_HOST"),
                "inspect",
            ])
            .args([
                "--format",
                "{{range .Mounts}}{{.Destination}} {{end}}",
                id.trim(),
            ]));
        out.split_whitespace().map(str::to_owned).collect()
    }

    fn compose(&self, args: &[&str]) -> String {
        run(Command::new(script())
            .arg("compose")
            .arg(&self.dir)
            .args(args)
            // docker-compose.yml publishes Prometheus on the compose host's loopback (it has
            // no authentication); here on the compose host's address, where the test
            // reaches the hook-receiver's published port too.
            .env("FERRY_PROMETHEUS_BIND", &self.production))
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    /// Until every service with a healthcheck says healthy (RabbitMQ and the seven Ferry
    /// services: each Ferry service's readiness includes its broker connection) and the
    /// operator API answers, as an operator would wait after `up`.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ps = self.compose(&["ps"]);
            let healthy = ps.lines().filter(|l| l.contains("(healthy)")).count();
            if healthy == SERVICES.len() + 1 && self.get("/api/projects/shop/runs").await.is_some()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stack was not ready in 120 s:\n{ps}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn runs(&self) -> Vec<Value> {
        self.get("/api/projects/shop/runs")
            .await
            .and_then(|v| v["runs"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The run of `revision` once `done` holds for its events' kinds (`kind.env`).
    async fn wait_run(
        &self,
        revision: &str,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Value {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let run = self
                .runs()
                .await
                .into_iter()
                .find(|r| r["revision"] == revision);
            if let Some(run) = &run {
                let kinds = kinds(run);
                assert!(
                    !kinds.iter().any(|k| k.contains(".failed")),
                    "run of r{revision} failed: {kinds:?}"
                );
                if done(&kinds) {
                    return run.clone();
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "run of r{revision} did not get {what} in {} s; it has {:?}\n{}",
                    RUN_TIMEOUT.as_secs(),
                    run.as_ref().map(kinds),
                    self.compose(&["ps"])
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn approve(&self, run: &Value) {
        let id = run["run_id"].as_str().unwrap();
        let r = self
            .http
            .post(format!("{}/api/runs/{id}/approve", self.api))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"comment": "containers test"}))
            .send()
            .await
            .expect("approve");
        assert!(r.status().is_success(), "approve: {}", r.status());
    }

    /// The revision production serves, on whichever of its two ports is live.
    async fn production_revision(&self) -> Option<String> {
        for port in [18090, 18091] {
            let url = format!("http://{}:{port}/revision", self.production);
            if let Ok(r) = self.http.get(url).send().await
                && r.status().is_success()
                && let Ok(text) = r.text().await
            {
                return Some(text.trim().to_owned());
            }
        }
        None
    }

    /// Commit a change to one PHP file, as most commits are; its revision.
    fn commit(&self, message: &str) -> String {
        let wc = self.dir.join("wc");
        let code = wc.join("trunk/shop/src/App.php");
        let mut text = std::fs::read_to_string(&code).unwrap();
        text.push_str(&format!("// {message}\n"));
        std::fs::write(&code, text).unwrap();
        let out = run(Command::new("svn")
            .args([
                "commit",
                "--non-interactive",
                "--no-auth-cache",
                "-m",
                message,
            ])
            .args(["--username", &harness_var("FERRY_TEST_SVN_USER")])
            .args(["--password", &harness_var("FERRY_TEST_SVN_PASSWORD")])
            .arg(&wc));
        out.lines()
            .find_map(|l| l.strip_prefix("Committed revision "))
            .map(|r| r.trim_end_matches('.').to_owned())
            .unwrap_or_else(|| panic!("no revision in svn's answer: {out}"))
    }

    /// Commit, wait for the approval hold after staging's tests, approve, and wait until
    /// production serves it; `meanwhile` runs right after the commit.
    async fn ship(&self, message: &str, meanwhile: impl FnOnce()) -> String {
        let revision = self.commit(message);
        meanwhile();
        let held = self.wait_held(&revision).await;
        self.approve(&held).await;
        self.wait_production(&revision).await;
        revision
    }

    async fn wait_held(&self, revision: &str) -> Value {
        self.wait_run(revision, "its approval hold", |k| {
            k.iter().any(|k| k == "approval.requested.production")
        })
        .await
    }

    async fn wait_production(&self, revision: &str) {
        self.wait_run(revision, "tested in production", |k| {
            k.iter().any(|k| k == "test.passed.production")
        })
        .await;
        assert_eq!(self.production_revision().await.as_deref(), Some(revision));
    }
}

/// The stack's Prometheus, through its HTTP API.
impl Stack {
    /// A Prometheus API answer's `data`, once Prometheus answers.
    async fn prometheus_api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.prometheus))
            .query(query)
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    /// An instant query's series.
    async fn query(&self, promql: &str) -> Vec<Value> {
        self.prometheus_api("/api/v1/query", &[("query", promql)])
            .await
            .and_then(|d| d["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The `instance`s of a service that job "ferry" scrapes now: what service discovery
    /// finds now. After `down` and `up` an instant query also returns, for the lookback
    /// of 5 minutes, the last samples of the containers before the `down`: Prometheus
    /// marks no series stale when it stops itself, and `up` makes a new network (here
    /// on the next subnet), so every container has another address, the instance label,
    /// and so other series.
    async fn instances(&self, service: &str) -> Vec<String> {
        let data = self
            .prometheus_api("/api/v1/targets", &[("state", "active")])
            .await
            .unwrap_or_default();
        data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["labels"]["job"] == "ferry" && t["labels"]["service"] == service)
            .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_owned))
            .collect()
    }

    /// Until `check` passes; panics with its last complaint after `timeout`.
    async fn eventually(
        &self,
        timeout: Duration,
        what: &str,
        check: impl AsyncFn() -> Result<(), String>,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            match check().await {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("Prometheus: {what} not so in {} s: {e}", timeout.as_secs())
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// `up{job="ferry"}` is 1 for every scraped instance of each of the seven services.
    async fn all_up(&self) -> Result<(), String> {
        let up: HashMap<String, f64> = self
            .query(r#"up{job="ferry"}"#)
            .await
            .iter()
            .filter_map(|s| Some((s["metric"]["instance"].as_str()?.to_owned(), sample(s)?)))
            .collect();
        let mut down = Vec::new();
        for service in SERVICES {
            let instances = self.instances(service).await;
            if instances.is_empty() || instances.iter().any(|i| up.get(i) != Some(&1.0)) {
                let seen: Vec<_> = instances.iter().map(|i| (i, up.get(i))).collect();
                down.push(format!("{service}: {seen:?}"));
            }
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(format!("not up: {down:?}"))
        }
    }

    /// The hook-receiver's count of production deployments of the project, summed over
    /// the instances scraped now (the series of a stopped one keep its last count).
    async fn production_deploys(&self) -> Option<f64> {
        let instances: Vec<String> = self
            .instances("hook-receiver")
            .await
            .iter()
            .map(|i| i.replace('.', r"\\."))
            .collect();
        if instances.is_empty() {
            return None;
        }
        let promql = format!(
            r#"sum by (project) (ferry_production_deploys_total{{job="ferry",project="shop",instance=~"{}"}})"#,
            instances.join("|")
        );
        self.query(&promql).await.first().and_then(sample)
    }

    async fn deploys_counted(&self, expected: usize) -> Result<(), String> {
        let counted = self.production_deploys().await;
        // A count never goes down within a process: more than expected is wrong now.
        if let Some(n) = counted
            && n > expected as f64
        {
            panic!("Prometheus counts {n} production deploys of shop, the test made {expected}");
        }
        match counted {
            Some(n) if n == expected as f64 => Ok(()),
            other => Err(format!(
                "ferry_production_deploys_total of shop is {other:?}, not {expected}"
            )),
        }
    }

    /// alerts.yml's groups, all of their rules, from the file the image ships; and no
    /// alert of a service down or cut off from RabbitMQ firing.
    async fn rules_loaded_and_quiet(&self) -> Result<(), String> {
        let (groups, rules) = shipped_rules();
        let data = self
            .prometheus_api("/api/v1/rules", &[])
            .await
            .ok_or("no answer from /api/v1/rules")?;
        let loaded: Vec<(String, String, usize)> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                (
                    g["name"].as_str().unwrap_or_default().to_owned(),
                    g["file"].as_str().unwrap_or_default().to_owned(),
                    g["rules"].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        // The API lists the groups by name, not in the file's order.
        let mut names: Vec<&String> = loaded.iter().map(|g| &g.0).collect();
        let mut groups: Vec<&String> = groups.iter().collect();
        names.sort();
        groups.sort();
        let total: usize = loaded.iter().map(|g| g.2).sum();
        if !(groups.len() >= 4
            && names == groups
            && loaded.iter().all(|g| g.1 == "/etc/prometheus/alerts.yml")
            && total == rules)
        {
            return Err(format!(
                "rule groups loaded {loaded:?}, alerts.yml has {groups:?} with {rules} rules"
            ));
        }
        let alerts = self
            .prometheus_api("/api/v1/alerts", &[])
            .await
            .ok_or("no answer from /api/v1/alerts")?;
        let firing: Vec<String> = alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| a["labels"].to_string())
            .collect();
        if firing.iter().any(|a| {
            a.contains(r#""alertname":"FerryServiceDown""#)
                || a.contains(r#""alertname":"FerryBrokerDisconnected""#)
        }) {
            Err(format!("firing: {firing:?}"))
        } else {
            Ok(())
        }
    }

    /// A build that passed, timed: its stage-duration series. The builds were counted
    /// by hook-receivers before the last `down`, whose series ended there: over the
    /// last hour, not only now.
    async fn build_timed(&self) -> Result<(), String> {
        let series = self
            .query(
                r#"last_over_time(ferry_stage_duration_seconds_count{job="ferry",stage="build",outcome="passed",project="shop"}[1h])"#,
            )
            .await;
        if series.iter().any(|s| sample(s).is_some_and(|n| n >= 1.0)) {
            Ok(())
        } else {
            Err(format!("no passed build timed: {series:?}"))
        }
    }
}

fn kinds(run: &Value) -> Vec<String> {
    run["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| match e["environment"].as_str() {
            Some(env) => format!("{}.{env}", e["kind"].as_str().unwrap_or("?")),
            None => e["kind"].as_str().unwrap_or("?").to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_svn_commit_reaches_production_through_the_containers_across_restarts_and_down_up() {
    let stack = Stack::prepare();
    let up = Instant::now();
    stack.compose(&["up", "-d"]);
    stack.wait_ready().await;
    // Meanwhile the stack's Prometheus finds the seven services and scrapes them.
    let (first, ()) = tokio::join!(stack.ship("first run in containers", || {}), async {
        stack
            .eventually(RUN_TIMEOUT, "all seven services up", async || {
                stack.all_up().await
            })
            .await;
        eprintln!(
            "Prometheus: all seven services up {:.1} s after `docker-compose up -d`",
            up.elapsed().as_secs_f64()
        );
    });
    let mut shipped = vec![first];
    // Production deployments since the hook-receiver's process started, the ones its
    // ferry_production_deploys_total counts (a restarted process starts again at 0 and
    // does not count the events its predecessor recorded).
    let mut deploys = 1;

    // Least privilege: the deploy hosts' client keys only where hosts are deployed to or
    // looked at, the engine's socket only where images are built, pushed, pulled or run;
    // every service above started and shipped without what it was not given.
    for service in ["hook-receiver", "builder", "pusher", "notifier"] {
        let mounts = stack.mounts(service);
        assert!(
            !mounts.iter().any(|m| m == "/etc/ferry/docker-certs"),
            "{service} was given the deploy hosts' keys: {mounts:?}"
        );
    }
    for service in ["hook-receiver", "notifier"] {
        let mounts = stack.mounts(service);
        assert!(
            !mounts.iter().any(|m| m == "/var/run/docker.sock"),
            "{service} was given the Docker socket: {mounts:?}"
        );
    }

    // Each service restarted while a run goes through: the run still reaches production.
    for service in SERVICES {
        let message = format!("restart {service} during the run");
        let revision = stack
            .ship(&message, || {
                stack.compose(&["restart", service]);
            })
            .await;
        shipped.push(revision);
        // The restart came before this run's deploy to production, which the new process
        // counted.
        if service == "hook-receiver" {
            deploys = 0;
        }
        deploys += 1;
    }

    // A run held for approval when the stack goes down is still held after it comes up.
    let revision = stack.commit("held across down and up");
    // Meanwhile: Prometheus counts the deploys since the hook-receiver's restart, exactly
    // (seven, each with one of the services restarted on the way, the first with the
    // hook-receiver itself).
    tokio::join!(
        stack.wait_held(&revision),
        stack.eventually(SCRAPE_TIMEOUT, "production deploys counted", async || {
            stack.deploys_counted(deploys).await
        })
    );
    stack.compose(&["down"]);
    stack.compose(&["up", "-d"]);
    stack.wait_ready().await;
    let held = stack.wait_held(&revision).await;
    stack.approve(&held).await;
    stack.wait_production(&revision).await;
    shipped.push(revision);
    // All of the hook-receiver's processes before the `down` are gone, with their counts
    // (the old series are in Prometheus's history, not in what is scraped now).
    deploys = 1;

    // Prometheus came back with its history (a volume) and the same configuration: it
    // scrapes the seven services again, has Ferry's alerts loaded and none of a service
    // down or disconnected firing, counts this process's one production deploy, and still
    // has the builds' stage durations, timed before the `down`.
    let checked = Instant::now();
    stack
        .eventually(
            SCRAPE_TIMEOUT,
            "the stack monitored after down/up",
            async || {
                stack.all_up().await?;
                stack.rules_loaded_and_quiet().await?;
                stack.deploys_counted(deploys).await?;
                stack.build_timed().await
            },
        )
        .await;
    eprintln!(
        "Prometheus: checked {:.1} s after the last run reached production",
        checked.elapsed().as_secs_f64()
    );

    // The history kept every run, each of them tested in production.
    let runs = stack.runs().await;
    for revision in &shipped {
        let run = runs
            .iter()
            .find(|r| r["revision"] == revision.as_str())
            .unwrap_or_else(|| panic!("run of r{revision} missing from the history after down/up"));
        assert!(
            kinds(run).iter().any(|k| k == "test.passed.production"),
            "r{revision}: {:?}",
            kinds(run)
        );
    }
    assert_eq!(
        stack.production_revision().await.as_deref(),
        shipped.last().map(String::as_str)
    );
}

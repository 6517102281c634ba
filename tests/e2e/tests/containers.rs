//! Ferry as its users run it: the repository's own `docker-compose.yml`, with the images
//! `deploy/images.sh` builds, on a host of its own (the compose host: a network namespace
//! with a Docker engine, two deploy hosts behind TLS, svnserve and a git server; see
//! `tests/lib/compose-host.sh`), shipping the PHP application our users ship
//! (`deploy/examples/shop`: nginx + php-fpm, composer, esbuild, ops' `.env` from the config
//! repo, which the tests check). SVN commits go through the containers to production, past
//! the staging tests and an approval hold, while each Ferry service is restarted in turn and
//! the whole stack is taken down and up again: no run is lost, a hold placed before `down`
//! is still there to approve after `up`, the history keeps every run, and production serves
//! the newest run.

use ferry_testkit::harness_var;
use serde_json::Value;
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

struct Stack {
    dir: PathBuf,
    api: String,
    token: String,
    production: String,
    http: reqwest::Client,
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
        Self {
            api: env_value(&env, "FERRY_COMPOSE_API"),
            token: env_value(&env, "FERRY_COMPOSE_TOKEN"),
            production: env_value(&env, "FERRY_COMPOSE_ADDR"),
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
            .args(args))
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
    stack.compose(&["up", "-d"]);
    stack.wait_ready().await;
    let mut shipped = vec![stack.ship("first run in containers", || {}).await];

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
    }

    // A run held for approval when the stack goes down is still held after it comes up.
    let revision = stack.commit("held across down and up");
    stack.wait_held(&revision).await;
    stack.compose(&["down"]);
    stack.compose(&["up", "-d"]);
    stack.wait_ready().await;
    let held = stack.wait_held(&revision).await;
    stack.approve(&held).await;
    stack.wait_production(&revision).await;
    shipped.push(revision);

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

//! Run order against forged times, end to end: GitHub pushes of a real git repository
//! through every service (build, push to the registry, pull, deploy on a Docker host).
//! What decides "older" is the commit's place in the history, never the date the
//! committer (or the payload) gives, nor when or how often a signed push is replayed.

mod common;

use common::stack::{Stack, spawn_stack};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::Envelope;
use ferry_testkit::project::git;
use ferry_testkit::{
    Tap, amqp_url, docker, docker_hosts, free_port, harness_var, http_request, unique_namespace,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const SECRET: &str = "gh-order-secret-1";
// Generous: the whole suite shares two cores with three Docker daemons.
const WAIT: Duration = Duration::from_secs(120);

struct World {
    ns: String,
    project: String,
    repo_name: String,
    ports: [u16; 2],
    code: PathBuf,
    _dir: tempfile::TempDir,
    cfg: Arc<FerryConfig>,
}

impl World {
    /// A git repository (the code, with its Dockerfile) and a project that follows it,
    /// deployed to one staging environment on the first Docker host.
    fn new() -> Self {
        ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
        let ns = unique_namespace();
        let project = format!("order{}", &ns[1..9]);
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(
            code.join("Dockerfile"),
            "FROM ferry-test/busybox:1\nCOPY . /www\n",
        )
        .unwrap();
        std::fs::write(code.join("healthz"), "ok\n").unwrap();
        git(&code, &["init", "-q", "-b", "main"]);
        let ports = [free_port(), free_port()];
        let repo_name = format!("ferry/{project}");
        let text = format!(
            r#"
            [broker]
            url = "{amqp}"
            namespace = "{ns}"
            retry_delays_ms = [500]
            max_attempts = 3
            [hooks]
            github_secret = "{SECRET}"
            [registry]
            address = "{registry}"
            username = "{user}"
            password = "{pass}"
            [build]
            docker_host = "{h1}"
            work_dir = "{work}"
            log_dir = "{logs}"
            [docker_hosts.h1]
            url = "{h1}"
            [environments.staging]
            hosts = ["h1"]
            ports = [{p1}, {p2}]
            [projects.{project}]
            image = "order/{ns}"
            environments = ["staging"]
            source = {{ kind = "git", url = "file://{code}", repository = "{repo_name}", branches = ["main"] }}
            [projects.{project}.container]
            command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
            health_timeout_secs = 20
            [projects.{project}.tests]
            wait_until_healthy_secs = 5
            [[projects.{project}.tests.checks]]
            url = "/healthz"
            "#,
            amqp = amqp_url(),
            registry = harness_var("FERRY_TEST_REGISTRY"),
            user = harness_var("FERRY_TEST_REGISTRY_USER"),
            pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
            h1 = docker_hosts()[0],
            work = dir.path().join("work").display(),
            logs = dir.path().join("logs").display(),
            p1 = ports[0],
            p2 = ports[1],
            code = code.display(),
        );
        let mut text = text;
        for svc in ferry_shared::SERVICES {
            text.push_str(&format!(
                "[services.{}]\nadmin_listen = \"127.0.0.1:0\"\n",
                svc.replace('-', "_")
            ));
            if svc == hook_receiver::SERVICE {
                text.push_str("listen = \"127.0.0.1:0\"\n");
            }
        }
        let cfg = Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap());
        Self {
            ns,
            project,
            repo_name,
            ports,
            code,
            _dir: dir,
            cfg,
        }
    }

    /// Commit `content` as index.html, dated `date` (author and committer, as a
    /// committer's clock or `--date` can set them); the commit id.
    fn commit(&self, content: &str, date: &str) -> String {
        self.commit_file("index.html", content, date)
    }

    /// The same for any file.
    fn commit_file(&self, file: &str, content: &str, date: &str) -> String {
        std::fs::write(self.code.join(file), format!("{content}\n")).unwrap();
        git(&self.code, &["add", "."]);
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=Jane", "-c", "user.email=jane@example.com"])
            .args(["commit", "-q", "-m", content, "--date", date])
            .env("GIT_COMMITTER_DATE", date)
            .current_dir(&self.code)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        git(&self.code, &["rev-parse", "HEAD"])
    }

    /// GitHub's push payload for `sha` at the tip of main, the head commit dated `date`.
    fn push_body(&self, sha: &str, date: &str) -> Vec<u8> {
        serde_json::json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000001",
            "after": sha,
            "repository": {
                "full_name": self.repo_name,
                "clone_url": format!("file://{}", self.code.display()),
                "default_branch": "main"
            },
            "head_commit": {
                "id": sha, "message": "change", "timestamp": date,
                "author": { "name": "Jane", "email": "jane@example.com" },
                "added": [], "modified": ["index.html"], "removed": []
            },
            "commits": [{
                "id": sha, "message": "change", "timestamp": date,
                "author": { "name": "Jane", "email": "jane@example.com" },
                "added": [], "modified": ["index.html"], "removed": []
            }],
            "pusher": { "name": "jane" }
        })
        .to_string()
        .into_bytes()
    }

    /// POST a signed push (as GitHub signs it, or as anyone who captured one replays
    /// it) with this delivery id, or none; the run it started.
    async fn post(&self, stack: &Stack, body: &[u8], delivery: Option<&str>) -> Uuid {
        let signature = format!(
            "sha256={}",
            ferry_hooks::verify::hmac_sha256_hex(SECRET, body)
        );
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        if let Some(d) = delivery {
            headers.push(("X-GitHub-Delivery", d));
        }
        let (status, reply) = http_request(stack.hooks, "POST", "/hooks/github", &headers, body)
            .await
            .unwrap();
        assert_eq!(status, 202, "{reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        reply["run_ids"][0].as_str().unwrap().parse().unwrap()
    }

    /// How run `run` ended in staging: its deploy's outcome, or the stage that failed
    /// before it.
    async fn outcome(&self, tap: &mut Tap, run: Uuid) -> Envelope {
        let ends = [
            "deploy.succeeded",
            "deploy.superseded",
            "deploy.failed",
            "build.failed",
            "push.failed",
            "pull.failed",
        ];
        loop {
            let e = tap
                .next(WAIT)
                .await
                .unwrap_or_else(|| panic!("run {run} did not reach a deploy outcome"));
            if e.run_id == run && ends.contains(&e.kind()) {
                return e;
            }
        }
    }

    async fn serving(&self) -> Option<String> {
        for port in self.ports {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            if let Ok((200, body)) = http_request(addr, "GET", "/", &[], b"").await {
                return Some(body.trim().to_owned());
            }
        }
        None
    }

    /// The running containers of the project: id, start time and order label each.
    fn running(&self) -> Vec<String> {
        let ids = docker(
            &docker_hosts()[0],
            None,
            &[
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("label=io.ferry.project={}", self.project),
            ],
        )
        .unwrap();
        ids.lines()
            .map(|id| {
                docker(
                    &docker_hosts()[0],
                    None,
                    &[
                        "inspect",
                        "--format",
                        "{{.Id}} {{.State.StartedAt}} {{index .Config.Labels \"io.ferry.order\"}}",
                        id,
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    fn cleanup(&self) {
        let filter = format!("label=io.ferry.project={}", self.project);
        if let Ok(ids) = docker(
            &docker_hosts()[0],
            None,
            &["ps", "-aq", "--filter", &filter],
        ) {
            for id in ids.lines() {
                let _ = docker(&docker_hosts()[0], None, &["rm", "-f", id]);
            }
        }
        let _ = &self.ns;
    }
}

/// The time `minutes` ago, as a forge writes it.
fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// Commits reachable from `sha` in the world's repository: the place Ferry records.
fn place(w: &World, sha: &str) -> String {
    format!(
        "git:{}",
        git(&w.code, &["rev-list", "--count", "--end-of-options", sha])
    )
}

/// A commit dated 2099 (first deployed) must not pin staging: the next commit, with an
/// honest date, still deploys. And a replay of the 2099 push under a new delivery id
/// does not take staging back to it: it ends superseded and nothing is restarted.
#[tokio::test]
async fn a_commit_dated_2099_does_not_pin_the_environment_nor_come_back_when_replayed() {
    let w = World::new();
    let mut tap = Tap::new(&amqp_url(), &w.ns, "#").await.unwrap();
    let stack = spawn_stack(w.cfg.clone()).await;

    let future = "2099-01-01T00:00:00Z";
    let a = w.commit("a", future);
    let a_body = w.push_body(&a, future);
    let run = w.post(&stack, &a_body, Some("delivery-a")).await;
    assert_eq!(w.outcome(&mut tap, run).await.kind(), "deploy.succeeded");
    assert_eq!(w.serving().await.as_deref(), Some("a"));

    let now = ago(0);
    let b = w.commit("b", &now);
    let run = w
        .post(&stack, &w.push_body(&b, &now), Some("delivery-b"))
        .await;
    let done = w.outcome(&mut tap, run).await;
    assert_eq!(
        done.kind(),
        "deploy.succeeded",
        "a commit dated 2099 pinned staging: {done:?}"
    );
    assert_eq!(w.serving().await.as_deref(), Some("b"));
    let running = w.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(
        running[0].ends_with(&format!(" {}", place(&w, &b))),
        "{running:?}"
    );

    // The captured 2099 push, replayed with a delivery id of the replayer's choosing.
    let replay = w.post(&stack, &a_body, Some("delivery-a-again")).await;
    let done = w.outcome(&mut tap, replay).await;
    assert_eq!(
        done.kind(),
        "deploy.superseded",
        "a replayed old push rolled staging back: {done:?}"
    );
    assert_eq!(w.serving().await.as_deref(), Some("b"));
    assert_eq!(w.running(), running, "a replay restarted a container");
    stack.stop().await;
    w.cleanup();
}

/// A commit rebased onto what runs keeps its old (2001) date: it is still newer, and
/// deploys.
#[tokio::test]
async fn a_rebased_commit_with_an_old_date_still_deploys() {
    let w = World::new();
    let mut tap = Tap::new(&amqp_url(), &w.ns, "#").await.unwrap();
    let stack = spawn_stack(w.cfg.clone()).await;

    let old = "2001-01-01T00:00:00Z";
    let (then, now) = (ago(60), ago(0));
    let a = w.commit("a", &then);
    let run = w
        .post(&stack, &w.push_body(&a, &then), Some("delivery-a"))
        .await;
    assert_eq!(w.outcome(&mut tap, run).await.kind(), "deploy.succeeded");
    // Work on a branch, written long ago (its dates say 2001).
    git(&w.code, &["checkout", "-q", "-b", "feature"]);
    w.commit("c", old);
    // Meanwhile main moves on and is deployed.
    git(&w.code, &["checkout", "-q", "main"]);
    let b = w.commit_file("notes.txt", "b", &now);
    let run = w
        .post(&stack, &w.push_body(&b, &now), Some("delivery-b"))
        .await;
    assert_eq!(w.outcome(&mut tap, run).await.kind(), "deploy.succeeded");
    assert_eq!(w.serving().await.as_deref(), Some("a"));

    // The branch rebased onto main, keeping its dates, and merged.
    git(&w.code, &["checkout", "-q", "feature"]);
    git(
        &w.code,
        &["rebase", "-q", "--committer-date-is-author-date", "main"],
    );
    let c = git(&w.code, &["rev-parse", "HEAD"]);
    git(&w.code, &["checkout", "-q", "main"]);
    git(&w.code, &["merge", "-q", "--ff-only", &c]);
    let dated = git(&w.code, &["log", "-1", "--format=%cI", &c]);
    assert!(dated.starts_with("2001-"), "{dated}");
    let run = w
        .post(&stack, &w.push_body(&c, old), Some("delivery-c"))
        .await;
    let done = w.outcome(&mut tap, run).await;
    assert_eq!(
        done.kind(),
        "deploy.succeeded",
        "a rebased commit with an old date was skipped: {done:?}"
    );
    assert_eq!(w.serving().await.as_deref(), Some("c"));
    stack.stop().await;
    w.cleanup();
}

/// A signed push replayed without `X-GitHub-Delivery` gets a new run, but that run
/// must not roll staging back to its older commit.
#[tokio::test]
async fn a_push_replayed_without_a_delivery_id_does_not_roll_back() {
    let w = World::new();
    let mut tap = Tap::new(&amqp_url(), &w.ns, "#").await.unwrap();
    let stack = spawn_stack(w.cfg.clone()).await;

    // Honest dates, an hour apart.
    let (then, now) = (ago(60), ago(0));
    let a = w.commit("a", &then);
    let a_body = w.push_body(&a, &then);
    let run = w.post(&stack, &a_body, Some("delivery-a")).await;
    assert_eq!(w.outcome(&mut tap, run).await.kind(), "deploy.succeeded");
    let b = w.commit("b", &now);
    let run = w
        .post(&stack, &w.push_body(&b, &now), Some("delivery-b"))
        .await;
    assert_eq!(w.outcome(&mut tap, run).await.kind(), "deploy.succeeded");
    assert_eq!(w.serving().await.as_deref(), Some("b"));
    let running = w.running();

    let replay = w.post(&stack, &a_body, None).await;
    let done = w.outcome(&mut tap, replay).await;
    assert_eq!(
        done.kind(),
        "deploy.superseded",
        "a replayed push without a delivery id rolled staging back: {done:?}"
    );
    assert_eq!(w.serving().await.as_deref(), Some("b"));
    assert_eq!(w.running(), running, "a replay restarted a container");
    stack.stop().await;
    w.cleanup();
}

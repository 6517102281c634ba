//! Operators' scopes over real HTTP against the real RabbitMQ: what an operator may not
//! do is refused with 403 naming what is missing, publishes nothing and leaves an
//! approval hold where it was; who started a run cannot approve it where another
//! approver is required; a rebuilt rollback passes the environments before its
//! target unless someone allowed to approve there skips the gate, on the record.

mod common;

use chrono::Utc;
use ferry_shared::bus::{Publisher, hold};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{
    ApprovalRequested, DeploySucceeded, Envelope, Event, GateOverride, ImagePushed, Starter,
};
use ferry_testkit::{Tap, amqp_url, http_request, queue_len, unique_namespace};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";
const VIEWER: &str = "viewer-token-0123456789";
const ROLLER: &str = "roller-token-0123456789";
const CAROL: &str = "carol-token-0123456789";
const DAVE: &str = "dave-token-0123456789ab";
const MANUAL_TOKEN: &str = "manual-token-1";
const WAIT: Duration = Duration::from_secs(5);
/// How long the tests listen for an event that must not come.
const QUIET: Duration = Duration::from_millis(500);

/// `shop` goes staging → production (which needs another approver than who started
/// the run), `books` staging → live. alice may do everything everywhere; bob only
/// on `shop`; viewer has only a token (the form before scopes: view only); roller may
/// roll back but not approve.
fn config(ns: &str) -> Arc<FerryConfig> {
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        publish_timeout_ms = 2000
        connect_timeout_ms = 1000
        [hooks]
        manual_token = "{MANUAL_TOKEN}"
        github_secret = "{github_secret}"
        [services.hook_receiver]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [environments.staging]
        [environments.production]
        require_other_approver = true
        [environments.live]
        [projects.shop]
        image = "shop/web"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/shop" }}
        [projects.books]
        image = "books/web"
        environments = ["staging", "live"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/books" }}
        [operators.alice]
        token = "{ALICE}"
        can = ["view", "deploy", "approve", "rollback"]
        authors = ["alice@example.com"]
        [operators.bob]
        token = "{BOB}"
        projects = ["shop"]
        can = ["deploy", "approve", "rollback"]
        [operators.viewer]
        token = "{VIEWER}"
        [operators.roller]
        token = "{ROLLER}"
        can = ["rollback"]
        [projects.hello]
        image = "hello/web"
        environments = ["staging", "production"]
        source = {{ kind = "git", url = "https://github.com/Codertocat/Hello-World.git" }}
        [operators.carol]
        token = "{CAROL}"
        can = ["approve"]
        authors = ["carol-gh"]
        [operators.dave]
        token = "{DAVE}"
        projects = ["shop"]
        can = ["scale"]
        "#,
        amqp = amqp_url(),
        github_secret = common::GITHUB_SECRET,
    );
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

struct Setup {
    cfg: Arc<FerryConfig>,
    rx: common::Receiver,
    tap: Tap,
}

async fn setup() -> Setup {
    let ns = unique_namespace();
    let cfg = config(&ns);
    // Stands in for the stages' queues (publishes are mandatory).
    let tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let rx = common::start(cfg.clone()).await;
    Setup { cfg, rx, tap }
}

async fn api(addr: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, text) = http_request(
        addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
    .unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Nothing reached the bus within `QUIET`: what was refused (`what`) started nothing.
async fn nothing_published(tap: &mut Tap, what: &str) {
    let published = tap.drain(QUIET).await;
    assert!(
        published.is_empty(),
        "{what} published: {:?}",
        published
            .iter()
            .map(Envelope::routing_key)
            .collect::<Vec<_>>()
    );
}

fn error(reply: &Value) -> &str {
    reply["error"].as_str().unwrap_or_default()
}

/// Hold a run of `project` for approval into `env`, as the updater would; `cause` is
/// the run's earlier event (it carries who started the run), else a new run.
async fn held(cfg: &FerryConfig, project: &str, env: &str, cause: Option<&Envelope>) -> Uuid {
    let request = Event::ApprovalRequested(ApprovalRequested {
        revision: "5".into(),
        image: format!("127.0.0.1:5000/{project}:5@sha256:{}", "a".repeat(64)),
        passed_in: None,
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        canary_percent: None,
    });
    let e = match cause {
        Some(c) => c.follow(request, Some(env)),
        None => {
            let mut e = Envelope::new_run(project, request);
            e.environment = Some(env.into());
            e
        }
    };
    hold::place(&cfg.broker, &e, Duration::from_secs(600))
        .await
        .unwrap();
    e.run_id.into()
}

async fn still_held(cfg: &FerryConfig, run: Uuid, env: &str) -> bool {
    let queue = hold::queue_name(&cfg.broker.namespace, run, env);
    queue_len(&amqp_url(), &queue).await.unwrap() == 1
}

#[tokio::test]
async fn an_operator_scoped_to_one_project_cannot_deploy_roll_back_or_approve_another() {
    let Setup { cfg, rx, mut tap } = setup().await;
    let run = held(&cfg, "books", "staging", None).await;

    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/books/deploy",
        BOB,
        json!({ "revision": "5" }),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        error(&reply).contains("project `books`")
            && error(&reply).contains("operators.bob.projects"),
        "{reply}"
    );
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/books/rollback",
        BOB,
        json!({ "environment": "staging", "to": "4" }),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    for verb in ["approve", "reject"] {
        let path = format!("/api/runs/{run}/{verb}");
        let (status, reply) = api(rx.addr, "POST", &path, BOB, Value::Null).await;
        assert_eq!(status, 403, "{verb}: {reply}");
        assert!(error(&reply).contains("books"), "{reply}");
    }
    let (status, reply) = api(rx.addr, "GET", "/api/projects/books/runs", BOB, Value::Null).await;
    assert_eq!(status, 403, "{reply}");
    nothing_published(&mut tap, "a refused request").await;
    assert!(still_held(&cfg, run, "staging").await, "the hold was taken");

    // In scope it works, and the run records who started it.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/deploy",
        BOB,
        json!({ "revision": "5" }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let started = tap.expect("source.changed", WAIT).await.unwrap();
    assert_eq!(started.started_by, Some(Starter::Operator("bob".into())));
    // And someone allowed answers the hold bob could not.
    let (status, reply) = api(
        rx.addr,
        "POST",
        &format!("/api/runs/{run}/approve"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    tap.expect_run("approval.granted.staging", run, WAIT)
        .await
        .unwrap();
    rx.stop().await;
}

#[tokio::test]
async fn an_operator_with_only_a_token_can_list_runs_but_not_approve_or_deploy() {
    let Setup { cfg, rx, mut tap } = setup().await;
    let run = held(&cfg, "shop", "staging", None).await;
    let (status, reply) = api(
        rx.addr,
        "GET",
        "/api/projects/shop/runs",
        VIEWER,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = api(
        rx.addr,
        "POST",
        &format!("/api/runs/{run}/approve"),
        VIEWER,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        error(&reply).contains("may not approve") && error(&reply).contains("operators.viewer.can"),
        "{reply}"
    );
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/deploy",
        VIEWER,
        json!({ "revision": "5" }),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    let published = tap.drain(QUIET).await;
    assert!(published.is_empty(), "{published:?}");
    assert!(still_held(&cfg, run, "staging").await, "the hold was taken");
    rx.stop().await;
}

#[tokio::test]
async fn whoever_started_a_run_cannot_approve_it_where_another_approver_is_required() {
    let Setup { cfg, rx, mut tap } = setup().await;

    // Started by alice with `ferry deploy`.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/deploy",
        ALICE,
        json!({ "revision": "5" }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let started = tap.expect("source.changed", WAIT).await.unwrap();
    let run = held(&cfg, "shop", "production", Some(&started)).await;
    let approve = format!("/api/runs/{run}/approve");
    let (status, reply) = api(rx.addr, "POST", &approve, ALICE, Value::Null).await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        error(&reply).contains("started this run")
            && error(&reply).contains("environments.production.require_other_approver"),
        "{reply}"
    );
    assert!(tap.drain(QUIET).await.is_empty());
    assert!(
        still_held(&cfg, run, "production").await,
        "the hold was lost"
    );
    let (status, reply) = api(rx.addr, "POST", &approve, BOB, Value::Null).await;
    assert_eq!(status, 200, "{reply}");
    let granted = tap
        .expect_run("approval.granted.production", run, WAIT)
        .await
        .unwrap();
    let Event::ApprovalGranted(d) = &granted.event else {
        panic!()
    };
    assert_eq!(d.by, "bob");

    // Started by a commit of alice's (one of her `authors`, any case): hers too.
    let run = github_push(&rx, &cfg, &mut tap, "someone-else", "Alice@Example.com").await;
    let (status, reply) = api(
        rx.addr,
        "POST",
        &format!("/api/runs/{run}/approve"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        error(&reply).contains("commit author Alice@Example.com"),
        "{reply}"
    );
    assert!(still_held(&cfg, run, "production").await);

    // Staging asks for no second person: alice approves her own run there.
    let run = held(&cfg, "shop", "staging", Some(&started)).await;
    let (status, reply) = api(
        rx.addr,
        "POST",
        &format!("/api/runs/{run}/approve"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    rx.stop().await;
}

/// A signed GitHub push of `hello` by the account `pusher` whose head commit says
/// `author` wrote it, held for approval into production; returns its run.
async fn github_push(
    rx: &common::Receiver,
    cfg: &FerryConfig,
    tap: &mut Tap,
    pusher: &str,
    author: &str,
) -> Uuid {
    let mut body: Value = serde_json::from_slice(&common::fixture("github-push.json")).unwrap();
    body["pusher"] =
        json!({ "name": pusher, "email": format!("{pusher}@users.noreply.github.com") });
    body["sender"]["login"] = json!(pusher);
    body["head_commit"]["author"] = json!({ "name": author, "email": author, "username": author });
    let body = body.to_string().into_bytes();
    let delivery = Uuid::now_v7().to_string();
    let (status, reply) = rx
        .post(
            "github",
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", &delivery),
                ("X-Hub-Signature-256", &common::github_signature(&body)),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let started = tap.expect("source.changed", WAIT).await.unwrap();
    held(cfg, "hello", "production", Some(&started)).await
}

#[tokio::test]
async fn the_forges_pusher_started_the_run_whatever_the_commit_says() {
    let Setup { cfg, rx, mut tap } = setup().await;
    // carol (GitHub login `carol-gh`) pushes a commit she says dave wrote: still her run.
    let run = github_push(&rx, &cfg, &mut tap, "carol-gh", "dave@example.com").await;
    let approve = format!("/api/runs/{run}/approve");
    let (status, reply) = api(rx.addr, "POST", &approve, CAROL, Value::Null).await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        error(&reply).contains("pusher carol-gh")
            && error(&reply).contains("environments.production.require_other_approver"),
        "{reply}"
    );
    assert!(
        tap.drain(QUIET).await.is_empty(),
        "a refused approval published"
    );
    assert!(
        still_held(&cfg, run, "production").await,
        "the hold was lost"
    );
    // Someone else may.
    let (status, reply) = api(rx.addr, "POST", &approve, BOB, Value::Null).await;
    assert_eq!(status, 403, "bob is scoped to shop: {reply}");
    let (status, reply) = api(rx.addr, "POST", &approve, ALICE, Value::Null).await;
    assert_eq!(status, 200, "{reply}");
    rx.stop().await;
}

#[tokio::test]
async fn the_manual_hooks_author_is_free_text_and_makes_nobody_the_starter() {
    let Setup { cfg, rx, mut tap } = setup().await;
    let (status, reply) = rx
        .post(
            "manual",
            &[
                ("Authorization", &format!("Bearer {MANUAL_TOKEN}")),
                ("Content-Type", "application/json"),
            ],
            json!({ "project": "shop", "revision": "6", "author": "bob" })
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let started = tap.expect("source.changed", WAIT).await.unwrap();
    assert_eq!(started.started_by, Some(Starter::ManualHook));
    let run = held(&cfg, "shop", "production", Some(&started)).await;
    let (status, reply) = api(
        rx.addr,
        "POST",
        &format!("/api/runs/{run}/approve"),
        BOB,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "bob did not start this run: {reply}");
    rx.stop().await;
}

#[tokio::test]
async fn a_rebuilt_rollback_passes_staging_unless_an_approver_skips_the_gate_on_the_record() {
    let Setup { rx, mut tap, .. } = setup().await;
    // No registry and no history: revision 4's image must be rebuilt.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/rollback",
        ALICE,
        json!({ "environment": "production", "to": "4" }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["rebuild"], true);
    assert_eq!(reply["through"], json!(["staging"]), "{reply}");
    assert_eq!(reply["gate_skipped"], false);
    let rebuild = tap.expect("source.changed", WAIT).await.unwrap();
    assert_eq!(rebuild.rollback_to.as_deref(), Some("production"));
    assert_eq!(rebuild.gate_override, None);
    assert_eq!(rebuild.started_by, Some(Starter::Operator("alice".into())));

    // Skipping the gate: not for someone who may not approve there, not without a
    // reason, not where another approver is required (it would be one's own approval).
    let skip = |env: &str, reason: Option<&str>| json!({ "environment": env, "to": "4", "skip_gate": true, "reason": reason });
    for (token, project, body, code, says) in [
        (
            ROLLER,
            "books",
            skip("live", Some("live is down")),
            403,
            "needs `approve` in live",
        ),
        (ALICE, "books", skip("live", None), 400, "needs a `reason`"),
        (
            ALICE,
            "shop",
            skip("production", Some("prod is down")),
            403,
            "require_other_approver",
        ),
    ] {
        let path = format!("/api/projects/{project}/rollback");
        let (status, reply) = api(rx.addr, "POST", &path, token, body).await;
        assert_eq!(status, code, "{reply}");
        assert!(error(&reply).contains(says), "{reply}");
    }
    nothing_published(&mut tap, "a refused override").await;

    // By an approver of `live`, with a reason: straight there, recorded on the run.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/books/rollback",
        ALICE,
        skip("live", Some("live is down")),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["gate_skipped"], true);
    assert_eq!(reply["through"], json!([]));
    let skipped = tap.expect("source.changed", WAIT).await.unwrap();
    assert_eq!(skipped.rollback_to.as_deref(), Some("live"));
    assert_eq!(
        skipped.gate_override,
        Some(GateOverride {
            by: "alice".into(),
            reason: "live is down".into()
        })
    );
    rx.stop().await;
}

/// A run of `project` at `rev` whose image was pushed and then deployed into `env`
/// (published on the bus as the pusher and the updater would); returns its image.
async fn pushed_and_deployed(cfg: &FerryConfig, project: &str, rev: &str, env: &str) -> String {
    let image = format!(
        "127.0.0.1:5000/{project}/web:{rev}@sha256:{}",
        rev.repeat(64).chars().take(64).collect::<String>()
    );
    // The receiver declares the history stream as it starts reading it: declare it
    // first here so these events cannot go before it exists.
    let conn = ferry_shared::bus::connect::connect(&cfg.broker, "test")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    ferry_shared::bus::topology::Topology::history(&cfg.broker)
        .declare(&channel)
        .await
        .unwrap();
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let pushed = Envelope::new_run(
        project,
        Event::ImagePushed(ImagePushed {
            revision: rev.into(),
            image: image.clone(),
            docker_millis: None,
        }),
    );
    let deployed = pushed.follow(
        Event::DeploySucceeded(DeploySucceeded {
            revision: rev.into(),
            image: image.clone(),
            previous_image: None,
            hosts: vec![],
        }),
        Some(env),
    );
    publisher.publish(&pushed).await.unwrap();
    publisher.publish(&deployed).await.unwrap();
    image
}

/// Wait until the API's run history has seen `n` events of `project`.
async fn history_has(addr: SocketAddr, project: &str, n: usize) {
    for _ in 0..200 {
        let (_, reply) = api(
            addr,
            "GET",
            &format!("/api/projects/{project}/runs"),
            ALICE,
            Value::Null,
        )
        .await;
        let seen: usize = reply["runs"]
            .as_array()
            .map(|runs| {
                runs.iter()
                    .map(|r| r["events"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        if seen >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run history never showed {n} events of {project}");
}

#[tokio::test]
async fn a_rollback_to_an_image_never_deployed_there_goes_through_staging() {
    let Setup { cfg, rx, mut tap } = setup().await;
    // Revision 7 reached staging only (it may be waiting for approval, rejected, or
    // failing there); revision 8 ran in production.
    pushed_and_deployed(&cfg, "shop", "7", "staging").await;
    let deployed = pushed_and_deployed(&cfg, "shop", "8", "production").await;
    history_has(rx.addr, "shop", 4).await;
    tap.drain(QUIET).await;

    // roller may only roll back: revision 7 is not put into production at once.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/rollback",
        ROLLER,
        json!({ "environment": "production", "to": "7" }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["rebuild"], true, "{reply}");
    assert_eq!(reply["through"], json!(["staging"]), "{reply}");
    let published = tap.drain(QUIET).await;
    assert!(
        !published
            .iter()
            .any(|e| matches!(&e.event, Event::DeployRequested(_))),
        "an image never deployed in production was rolled back into it at once: {:?}",
        published
            .iter()
            .map(Envelope::routing_key)
            .collect::<Vec<_>>()
    );
    let started = published
        .iter()
        .find(|e| e.kind() == "source.changed")
        .expect("a run through staging");
    assert_eq!(started.rollback_to.as_deref(), Some("production"));
    assert_eq!(started.gate_override, None);

    // Revision 8 ran in production: back to it at once, by digest.
    let (status, reply) = api(
        rx.addr,
        "POST",
        "/api/projects/shop/rollback",
        ROLLER,
        json!({ "environment": "production", "to": "8" }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["rebuild"], false, "{reply}");
    let back = tap
        .expect("deploy.requested.production", WAIT)
        .await
        .unwrap();
    let Event::DeployRequested(r) = &back.event else {
        panic!()
    };
    assert_eq!(
        (r.reason.as_str(), r.image.as_str()),
        ("rollback", deployed.as_str())
    );
    assert_eq!(back.environment.as_deref(), Some("production"));
    rx.stop().await;
}

/// The workspace's binaries sit next to the directory of this test executable.
fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|d| d.parent()).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is not built (cargo build --bins)",
        path.display()
    );
    path
}

#[test]
fn two_operators_with_one_token_stop_the_receiver_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferry.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [broker]
            url = "{amqp}"
            namespace = "{ns}"
            [services.hook_receiver]
            listen = "127.0.0.1:0"
            admin_listen = "127.0.0.1:0"
            [operators.ann]
            token = "shared-token-0123456789"
            [operators.ben]
            token = "shared-token-0123456789"
            "#,
            amqp = amqp_url(),
            ns = unique_namespace(),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(binary("hook-receiver"))
        .env("FERRY_CONFIG", &file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A receiver that accepted the file would serve until stopped: stop it after a
    // generous while, so the assertion below fails rather than the test hanging.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("operators.ben.token") && stderr.contains("operators.ann.token"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("shared-token-0123456789"),
        "the token was printed"
    );
}

#[tokio::test]
async fn only_an_operator_who_may_scale_asks_for_a_scale_and_it_records_who_asked() {
    let Setup { rx, mut tap, .. } = setup().await;
    let scale = |token, project: &str, body: Value| {
        let path = format!("/api/projects/{project}/scale");
        async move { api(rx.addr, "POST", &path, token, body).await }
    };
    let ask = json!({ "environment": "production", "to": 3 });
    // alice may do much, but not scale; dave may scale only shop.
    let (status, reply) = scale(ALICE, "shop", ask.clone()).await;
    assert_eq!(status, 403, "{reply}");
    assert!(error(&reply).contains("scale"), "{reply}");
    let (status, reply) = scale(DAVE, "books", json!({ "environment": "live", "to": 3 })).await;
    assert_eq!(status, 403, "{reply}");
    for (body, why) in [
        (
            json!({ "environment": "production", "to": 0 }),
            "from 1 to 100",
        ),
        (
            json!({ "environment": "production", "to": 101 }),
            "from 1 to 100",
        ),
        (json!({ "environment": "production" }), "missing"),
        (
            json!({ "environment": "live", "to": 2 }),
            "not an environment of shop",
        ),
        (
            json!({ "environment": "production", "to": 2, "replicas": 2 }),
            "replicas",
        ),
    ] {
        let (status, reply) = scale(DAVE, "shop", body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(error(&reply).contains(why), "{body}: {reply}");
    }
    nothing_published(&mut tap, "a refused request").await;

    let (status, reply) = scale(DAVE, "shop", ask).await;
    assert_eq!(status, 202, "{reply}");
    let asked = tap
        .expect("scale.requested.production", WAIT)
        .await
        .unwrap();
    assert_eq!(asked.run_id.to_string(), reply["run_id"].as_str().unwrap());
    assert_eq!(asked.started_by, Some(Starter::Operator("dave".into())));
    match &asked.event {
        Event::ScaleRequested(s) => {
            assert_eq!((s.to, s.requested_by.as_deref()), (3, Some("dave")));
        }
        other => panic!("{other:?}"),
    }
    rx.stop().await;
}

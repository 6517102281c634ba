//! The staging gate on real containers: two Docker daemons (staging on h1, production
//! on h2), images pushed to the registry, every service running, the operator API and
//! the `ferry` CLI. Proved over HTTP on loopback: what serves where.

mod common;

use common::gate::*;
use common::stack::spawn_stack;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeploySucceeded, Envelope, Event};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, harness_var, http_request};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const API_CHECK: &str = r#"
    [[projects.PROJECT.tests.checks]]
    url = "/"
    status = 200
    [[projects.PROJECT.tests.checks]]
    name = "api answers"
    url = "/api/ok"
    body_contains = ["ok"]
"#;

#[tokio::test]
async fn a_failing_staging_check_rolls_staging_back_and_never_reaches_production() {
    let g = Gate::new();
    let cfg = g.config("", &API_CHECK.replace("PROJECT", &g.project));
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let (v1, v2, v3) = (
        g.image("v1", true),
        g.image("v2", true),
        g.image("v3", false),
    );

    // v1 then v2 pass staging and reach production with the digest staging ran.
    for (rev, image) in [("v1", &v1), ("v2", &v2)] {
        let run = start_run(&cfg, &g.project, rev, image).await;
        let staged = tap
            .expect_run("deploy.succeeded.staging", run, WAIT)
            .await
            .unwrap();
        let passed = tap
            .expect_run("test.passed.staging", run, WAIT)
            .await
            .unwrap();
        let Event::TestPassed(report) = &passed.event else {
            panic!()
        };
        assert_eq!(report.checks.len(), 2, "{report:?}");
        let prod = tap
            .expect_run("deploy.succeeded.production", run, WAIT)
            .await
            .unwrap();
        let (Event::DeploySucceeded(s), Event::DeploySucceeded(p)) = (&staged.event, &prod.event)
        else {
            panic!()
        };
        assert_eq!(
            p.image, s.image,
            "production must run the digest that passed staging"
        );
        assert!(p.image.contains("@sha256:"));
        tap.expect_run("test.passed.production", run, WAIT)
            .await
            .unwrap();
        assert_eq!(g.serving(g.production).await.as_deref(), Some(rev));
    }
    // What production runs is that very digest, as its Docker host says.
    let h2 = &docker_hosts()[1];
    let filter = format!("label=io.ferry.project={}", g.project);
    let id = docker(h2, None, &["ps", "-q", "--filter", &filter]).unwrap();
    let running = docker(h2, None, &["inspect", "--format", "{{.Config.Image}}", &id]).unwrap();
    assert_eq!(running, v2);

    // v3 fails a staging check: staging goes back to v2, production never sees v3.
    let run = start_run(&cfg, &g.project, "v3", &v3).await;
    let failed = tap
        .expect_run("test.failed.staging", run, WAIT)
        .await
        .unwrap();
    let Event::TestFailed(f) = &failed.event else {
        panic!()
    };
    let report = f.report.as_ref().expect("a report with the failing check");
    let bad: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(bad.len(), 1, "{report:?}");
    assert_eq!(bad[0].name, "api answers");
    let detail = bad[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("expected a 2xx status, got 404"),
        "{detail}"
    );
    assert!(
        f.failure.reason.contains("api answers"),
        "{}",
        f.failure.reason
    );
    let back = tap
        .expect_run("deploy.rolled_back.staging", run, WAIT)
        .await
        .unwrap();
    let Event::DeployRolledBack(b) = &back.event else {
        panic!()
    };
    assert_eq!((b.revision.as_str(), b.image.as_str()), ("v2", v2.as_str()));
    assert_eq!(b.from_revision.as_deref(), Some("v3"));
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("v2"));
    assert_eq!(g.serving(g.production).await.as_deref(), Some("v2"));
    let later = tap.drain(Duration::from_secs(2)).await;
    assert!(
        !later
            .iter()
            .any(|e| e.run_id == run && e.environment.as_deref() == Some("production")),
        "the failed run touched production: {:?}",
        later.iter().map(Envelope::routing_key).collect::<Vec<_>>()
    );
    stack.stop().await;
    g.cleanup();
}

#[tokio::test]
async fn a_failing_production_health_check_rolls_production_back() {
    let g = Gate::new();
    let checks = format!(
        r#"
        [[projects.{p}.tests.checks]]
        url = "/"
        [[projects.{p}.tests.checks]]
        name = "production api"
        url = "/api/ok"
        body_contains = ["ok"]
        environments = ["production"]
        "#,
        p = g.project
    );
    let cfg = g.config("", &checks);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let (v1, v2) = (g.image("v1", true), g.image("v2", false));
    let run1 = start_run(&cfg, &g.project, "v1", &v1).await;
    tap.expect_run("test.passed.production", run1, WAIT)
        .await
        .unwrap();

    // v2 passes staging (which does not check the API) and breaks production.
    let run2 = start_run(&cfg, &g.project, "v2", &v2).await;
    tap.expect_run("test.passed.staging", run2, WAIT)
        .await
        .unwrap();
    tap.expect_run("deploy.succeeded.production", run2, WAIT)
        .await
        .unwrap();
    tap.expect_run("test.failed.production", run2, WAIT)
        .await
        .unwrap();
    let back = tap
        .expect_run("deploy.rolled_back.production", run2, WAIT)
        .await
        .unwrap();
    let Event::DeployRolledBack(b) = &back.event else {
        panic!()
    };
    assert_eq!(b.revision, "v1");
    assert!(
        b.reason.contains("tests failed in production"),
        "{}",
        b.reason
    );
    assert_eq!(g.serving(g.production).await.as_deref(), Some("v1"));
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("v2"));
    stack.stop().await;
    g.cleanup();
}

#[tokio::test]
async fn manual_approval_holds_until_approved_rejected_or_expired() {
    let g = Gate::new();
    let cfg = g.config(
        "approval = \"manual\"\napproval_timeout_secs = 8",
        &format!("[[projects.{}.tests.checks]]\nurl = \"/\"\n", g.project),
    );
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let (v1, v2, v3) = (
        g.image("v1", true),
        g.image("v2", true),
        g.image("v3", true),
    );

    // Held: staging passed, production waits.
    let run1 = start_run(&cfg, &g.project, "v1", &v1).await;
    let held = tap
        .expect_run("approval.requested.production", run1, WAIT)
        .await
        .unwrap();
    let Event::ApprovalRequested(a) = &held.event else {
        panic!()
    };
    assert_eq!(a.image, v1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        g.serving(g.production).await,
        None,
        "deployed before approval"
    );
    assert!(!tap.saw("deploy.started.production", |e| e.run_id == run1));

    // Approved: deployed, with who approved in the event.
    let out = ferry(
        &stack,
        &["approve", &run1.to_string(), "--comment", "looks good"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved"));
    let granted = tap
        .expect_run("approval.granted.production", run1, WAIT)
        .await
        .unwrap();
    let Event::ApprovalGranted(d) = &granted.event else {
        panic!()
    };
    assert_eq!(
        (d.by.as_str(), d.comment.as_deref()),
        ("alice", Some("looks good"))
    );
    tap.expect_run("deploy.succeeded.production", run1, WAIT)
        .await
        .unwrap();
    assert_eq!(g.serving(g.production).await.as_deref(), Some("v1"));

    // Rejected: the run ends there; a second answer is refused.
    let run2 = start_run(&cfg, &g.project, "v2", &v2).await;
    tap.expect_run("approval.requested.production", run2, WAIT)
        .await
        .unwrap();
    let out = ferry(&stack, &["reject", &run2.to_string()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejected = tap
        .expect_run("approval.rejected.production", run2, WAIT)
        .await
        .unwrap();
    let Event::ApprovalRejected(d) = &rejected.event else {
        panic!()
    };
    assert_eq!(d.by, "alice");
    let again = ferry(&stack, &["approve", &run2.to_string()]).await;
    assert_eq!(
        again.status.code(),
        Some(2),
        "approving a rejected run must be refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not waiting for approval"));

    // A wrong token is refused and changes nothing.
    let run3 = start_run(&cfg, &g.project, "v3", &v3).await;
    tap.expect_run("approval.requested.production", run3, WAIT)
        .await
        .unwrap();
    let bad = ferry_as(
        &stack,
        "not-a-token-of-anyone",
        &["approve", &run3.to_string()],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"));

    // Unanswered: expires, and production stays on v1.
    let expired = tap
        .expect_run("approval.expired.production", run3, Duration::from_secs(30))
        .await
        .unwrap();
    let Event::ApprovalExpired(d) = &expired.event else {
        panic!()
    };
    assert_eq!(d.by, "ferry");
    assert_eq!(g.serving(g.production).await.as_deref(), Some("v1"));
    let events = tap.drain(Duration::from_secs(1)).await;
    assert!(
        !events.iter().any(|e| (e.run_id == run2 || e.run_id == run3)
            && e.kind().starts_with("deploy.")
            && e.environment.as_deref() == Some("production")),
        "a rejected or expired run was deployed"
    );

    // `ferry runs` shows all three with their outcome.
    let out = ferry(&stack, &["runs", &g.project]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (run, status) in [
        (run1, "test.passed.production"),
        (run2, "approval.rejected.production"),
        (run3, "approval.expired.production"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(&run.to_string()) && l.contains(status)),
            "run {run} not shown as {status}:\n{text}"
        );
    }
    assert!(text.contains("deploy staging succeeded"), "{text}");
    stack.stop().await;
    g.cleanup();
}

#[tokio::test]
async fn ferry_rollback_goes_back_by_digest_without_a_build_and_rebuilds_what_the_registry_lost() {
    ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
    let g = Gate::new();
    let dir = tempfile::tempdir().unwrap();
    let svn_url = svn_web_project(dir.path(), 3);
    let source = format!(r#"{{ kind = "svn", url = "{svn_url}", path = "/trunk/web" }}"#);
    let build = build_table(dir.path());
    let checks = format!(
        "[[projects.{}.tests.checks]]\nurl = \"/healthz\"\n",
        g.project
    );
    let cfg = g.config_with("", &checks, &source, &build);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let p = g.project.as_str();

    // Three revisions reach production, started by hand with `ferry deploy`.
    let mut pushed = std::collections::HashMap::new();
    for rev in ["1", "2", "3"] {
        let out = ok(&ferry(
            &stack,
            &[
                "deploy",
                p,
                "--revision",
                rev,
                "--wait",
                "--timeout-secs",
                "120",
            ],
        )
        .await);
        let run = run_id_in(&out);
        let e = tap.expect_run("image.pushed", run, WAIT).await.unwrap();
        pushed.insert(rev, e.event.image().unwrap().to_owned());
        assert_eq!(
            g.serving(g.production).await.as_deref(),
            Some(format!("r{rev}").as_str())
        );
    }

    // Back to the previous revision: by digest, no build.
    let out = ok(&ferry(&stack, &["rollback", p, "--env", "production", "--wait"]).await);
    let run = run_id_in(&out);
    let back = tap
        .expect_run("deploy.rolled_back.production", run, WAIT)
        .await
        .unwrap();
    assert_eq!(back.event.image(), Some(pushed["2"].as_str()));
    assert_eq!(g.serving(g.production).await.as_deref(), Some("r2"));
    assert_eq!(
        g.serving(g.staging).await.as_deref(),
        Some("r3"),
        "staging must not move"
    );

    // To an older, named revision: found by digest, still no build.
    let out = ok(&ferry(
        &stack,
        &["rollback", p, "--env", "production", "--to", "1", "--wait"],
    )
    .await);
    let older = run_id_in(&out);
    tap.expect_run("deploy.rolled_back.production", older, WAIT)
        .await
        .unwrap();
    assert_eq!(g.serving(g.production).await.as_deref(), Some("r1"));
    let seen = tap.drain(Duration::from_millis(500)).await;
    assert!(
        !seen
            .iter()
            .any(|e| (e.run_id == run || e.run_id == older) && e.kind() == "image.built"),
        "a rollback built an image"
    );

    // Revision 2's image deleted from the registry: rebuilt from SVN, then through
    // staging and its tests like any run, then production.
    let reg = cfg.registry.as_ref().unwrap();
    let delete = |rev: &str| {
        let digest = pushed[rev].split_once('@').unwrap().1.to_owned();
        reqwest::Client::new()
            .delete(format!(
                "http://{}/v2/gate/{}/manifests/{digest}",
                reg.address, g.ns
            ))
            .basic_auth(&reg.username, Some(reg.password.expose()))
            .send()
    };
    let deleted = delete("2").await.unwrap();
    assert_eq!(deleted.status().as_u16(), 202, "registry delete");
    let out = ok(&ferry(
        &stack,
        &[
            "rollback",
            p,
            "--env",
            "production",
            "--to",
            "2",
            "--wait",
            "--timeout-secs",
            "120",
        ],
    )
    .await);
    assert!(out.contains("gone from the registry: rebuilding"), "{out}");
    let rebuilt = run_id_in(&out);
    tap.expect_run("image.built", rebuilt, WAIT).await.unwrap();
    let staged = tap
        .expect_run("deploy.succeeded.staging", rebuilt, WAIT)
        .await
        .unwrap();
    assert_eq!(staged.event.revision(), Some("2"));
    tap.expect_run("test.passed.staging", rebuilt, WAIT)
        .await
        .unwrap();
    let back = tap
        .expect_run("deploy.rolled_back.production", rebuilt, WAIT)
        .await
        .unwrap();
    assert_eq!(back.event.revision(), Some("2"));
    assert_eq!(
        back.event.image(),
        staged.event.image(),
        "production got another digest than staging tested"
    );
    assert_eq!(g.serving(g.production).await.as_deref(), Some("r2"));
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("r2"));

    // Revision 3's image gone too, and an approver skips the gate, saying why: rebuilt
    // and deployed to production only, the override on every event of the run.
    let deleted = delete("3").await.unwrap();
    assert_eq!(deleted.status().as_u16(), 202, "registry delete");
    let out = ok(&ferry(
        &stack,
        &[
            "rollback",
            p,
            "--env",
            "production",
            "--to",
            "3",
            "--skip-gate",
            "--reason",
            "staging is down",
            "--wait",
            "--timeout-secs",
            "120",
        ],
    )
    .await);
    assert!(out.contains("skipped by alice: staging is down"), "{out}");
    let skipped = run_id_in(&out);
    let back = tap
        .expect_run("deploy.rolled_back.production", skipped, WAIT)
        .await
        .unwrap();
    let recorded = back
        .gate_override
        .as_ref()
        .expect("the override on the event");
    assert_eq!(
        (recorded.by.as_str(), recorded.reason.as_str()),
        ("alice", "staging is down")
    );
    let Event::DeployRolledBack(b) = &back.event else {
        panic!()
    };
    assert!(b.reason.contains("skipped by alice"), "{}", b.reason);
    assert_eq!(g.serving(g.production).await.as_deref(), Some("r3"));
    assert_eq!(
        g.serving(g.staging).await.as_deref(),
        Some("r2"),
        "a rollback that skipped the gate touched staging"
    );

    // `ferry runs` shows the rollbacks next to the deploys.
    let out = ok(&ferry(&stack, &["runs", p, "--output", "json"]).await);
    let runs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let statuses: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == "deploy.rolled_back.production")
            .count(),
        4,
        "{statuses:?}"
    );
    stack.stop().await;
    g.cleanup();
}

#[tokio::test]
async fn an_svn_commit_reaches_production_through_the_post_commit_hook() {
    use ferry_testkit::project::svn;
    ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
    let g = Gate::new();
    let dir = tempfile::tempdir().unwrap();
    let svn_url = svn_web_project(dir.path(), 1);
    let source = format!(r#"{{ kind = "svn", url = "{svn_url}", path = "/trunk/web" }}"#);
    let token = "svn-hook-token-e2e-1";
    let tables = format!(
        "{}\n[hooks]\nsvn_token = \"{token}\"\n",
        build_table(dir.path())
    );
    let checks = format!(
        "[[projects.{}.tests.checks]]\nurl = \"/\"\nbody_contains = [\"r2\"]\n",
        g.project
    );
    let cfg = g.config_with("", &checks, &source, &tables);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;

    // The hook script as an SVN admin installs it (deploy/hooks/svn-post-commit).
    let name = svn_url.rsplit('/').next().unwrap();
    let repo = Path::new(&harness_var("FERRY_TEST_SVN_ROOT")).join(name);
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/hooks/svn-post-commit"
        ),
        repo.join("hooks/post-commit"),
    )
    .unwrap();
    std::fs::write(
        repo.join("conf/ferry-hook.conf"),
        format!(
            "FERRY_URL=http://{}/hooks/svn\nFERRY_TOKEN={token}\nFERRY_REPO_URL={svn_url}\n",
            stack.hooks
        ),
    )
    .unwrap();
    let wc = dir.path().join("wc");
    std::fs::write(wc.join("trunk/web/index.html"), "r2\n").unwrap();
    svn(&wc, &["commit", "-q", "-m", "ship r2"]);

    let source_changed = tap.expect("source.changed", WAIT).await.unwrap();
    assert_eq!(source_changed.event.revision(), Some("2"));
    let run = source_changed.run_id;
    for key in [
        "image.built",
        "image.pushed",
        "image.pulled.staging",
        "deploy.succeeded.staging",
        "test.passed.staging",
        "deploy.succeeded.production",
        "test.passed.production",
    ] {
        tap.expect_run(key, run, WAIT).await.unwrap();
    }
    assert_eq!(g.serving(g.production).await.as_deref(), Some("r2"));
    stack.stop().await;
    g.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gitlab_push_reaches_a_rancher_production() {
    use ferry_testkit::project::git;
    use ferry_testkit::rancher::{ACCESS_KEY, Misbehave, PROJECT, RancherSim, SECRET_KEY, SERVICE};
    let hosts = docker_hosts();
    ferry_testkit::ensure_busybox_base(&hosts[0]).unwrap();
    let g = Gate::new();
    let dir = tempfile::tempdir().unwrap();
    // The code in git, as GitLab would host it.
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(
        code.join("Dockerfile"),
        "FROM ferry-test/busybox:1\nCOPY . /www\n",
    )
    .unwrap();
    std::fs::write(code.join("index.html"), "g1\n").unwrap();
    std::fs::write(code.join("healthz"), "ok\n").unwrap();
    git(&code, &["init", "-q", "-b", "main"]);
    git(&code, &["add", "."]);
    git(&code, &["commit", "-q", "-m", "g1"]);
    let sha = git(&code, &["rev-parse", "HEAD"]);
    let repo_name = format!("ferry/{}", g.project);

    // Production is a Rancher service (the simulator runs it on the second host).
    let port = g.production[0];
    let v0 = ferry_testkit::web_image(&hosts[1], &format!("gl-{}", g.ns), "v0", true).unwrap();
    let command = [
        "/bin/httpd",
        "-f",
        "-p",
        &format!("127.0.0.1:{port}"),
        "-h",
        "/www",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let sim = RancherSim::start(&hosts[1], &v0, command, Misbehave::default())
        .await
        .unwrap();
    let production = format!(
        "target = \"rancher\"\nbase_url = \"http://127.0.0.1:{port}\"\nrancher = {{ url = \"{}\", project_id = \"{PROJECT}\", service_id = \"{SERVICE}\", access_key = \"{ACCESS_KEY}\", secret_key = \"{SECRET_KEY}\", timeout_secs = 20 }}",
        sim.url
    );
    let source = format!(
        r#"{{ kind = "git", url = "file://{}", repository = "{repo_name}", branches = ["main"] }}"#,
        code.display()
    );
    let tables = format!(
        "{}\n[hooks]\ngitlab_token = \"gitlab-token-e2e-1\"\n",
        build_table(dir.path())
    );
    let checks = format!(
        "[[projects.{}.tests.checks]]\nurl = \"/\"\nbody_contains = [\"g1\"]\n",
        g.project
    );
    let cfg = g.config_with(&production, &checks, &source, &tables);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;

    // GitLab's documented push payload, for this repository and commit.
    let mut body: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/hooks/tests/fixtures/gitlab-push.json"
        ))
        .unwrap(),
    )
    .unwrap();
    body["ref"] = "refs/heads/main".into();
    body["after"] = sha.clone().into();
    body["checkout_sha"] = sha.clone().into();
    body["project"]["path_with_namespace"] = repo_name.clone().into();
    body["project"]["default_branch"] = "main".into();
    body["commits"] = serde_json::json!([{ "id": sha, "message": "g1", "author": { "name": "Jane", "email": "jane@example.com" }, "added": ["index.html"], "modified": [], "removed": [] }]);
    body["total_commits_count"] = 1.into();
    let (status, reply) = http_request(
        stack.hooks,
        "POST",
        "/hooks/gitlab",
        &[
            ("Content-Type", "application/json"),
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "gitlab-token-e2e-1"),
        ],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let run: Uuid = reply["run_ids"][0].as_str().unwrap().parse().unwrap();

    let staged = tap
        .expect_run("deploy.succeeded.staging", run, WAIT)
        .await
        .unwrap();
    let prod = tap
        .expect_run("deploy.succeeded.production", run, WAIT)
        .await
        .unwrap();
    tap.expect_run("test.passed.production", run, WAIT)
        .await
        .unwrap();
    assert_eq!(
        prod.event.image(),
        staged.event.image(),
        "Rancher got another digest than staging"
    );
    assert_eq!(
        sim.image(),
        format!("docker:{}", prod.event.image().unwrap())
    );
    assert_eq!(sim.state(), "active");
    assert_eq!(g.serving([port, port]).await.as_deref(), Some("g1"));
    stack.stop().await;
    sim.cleanup();
    g.cleanup();
}

#[tokio::test]
async fn the_test_container_runs_against_the_environment_and_its_output_is_kept_scrubbed() {
    let g = Gate::new();
    let password = harness_var("FERRY_TEST_REGISTRY_PASSWORD");
    let db = ferry_testkit::project::DB_PASSWORD;
    let k = ferry_testkit::project::SHORT_KEYED_SECRET;
    let (hook_port, hooks) = webhook_sink().await;
    // The ops config repo's production .env holds `db`: the tester learns it from there.
    let work = tempfile::tempdir().unwrap();
    let config_repo = ferry_testkit::project::config_repo(work.path(), "FROM scratch\n");
    // Passes while the page says v1; prints a configured secret and the .env's password
    // (plain and base64, as an Authorization header would), and a random value under a
    // key that does not say it is a secret, none of which may survive; and the .env's
    // ordinary settings, which must.
    let checks = format!(
        r#"
        [projects.{p}.tests.container]
        image = "same"
        command = ["/bin/sh", "-c", "echo target=$FERRY_TARGET_URL revision=$FERRY_REVISION; echo password={password}; echo db={db} b64=$(echo -n {db} | base64); echo k={k} app_env=production charset=utf8mb4 port=3306; wget -q -O - $FERRY_TARGET_URL/ | grep -q v1"]
        environments = ["staging"]
        timeout_secs = 30
        # The staging app answers on the test host's loopback.
        network = "host"
        "#,
        p = g.project
    );
    let tables = format!(
        r#"
        [projects.{p}.config_repo]
        url = "{config_repo}"
        path = "shop"
        files = {{ "env/production.env" = ".env" }}
        [build]
        work_dir = "{work}"
        [notify]
        allow_hosts = ["127.0.0.1"]
        [notify.channels.hook]
        kind = "webhook"
        url = "http://127.0.0.1:{hook_port}/hook"
        [[notify.routes]]
        on = ["deploy.rolled_back"]
        channels = ["hook"]
        "#,
        p = g.project,
        work = work.path().join("work").display(),
    );
    let source = r#"{ kind = "git", url = "https://example.com/gate.git" }"#;
    let cfg = g.config_with("", &checks, source, &tables);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let (v1, v2) = (g.image("v1", true), g.image("v2", true));

    let run1 = start_run(&cfg, &g.project, "v1", &v1).await;
    let passed = tap
        .expect_run("test.passed.staging", run1, WAIT)
        .await
        .unwrap();
    let Event::TestPassed(report) = &passed.event else {
        panic!()
    };
    let output = report.output.as_deref().unwrap();
    assert!(output.contains("revision=v1"), "{output}");
    assert!(output.contains("target=http://127.0.0.1:"), "{output}");
    assert!(
        output.contains("password=[redacted]") && !output.contains(&password),
        "{output}"
    );
    // base64 of DB_PASSWORD, from Python's base64.b64encode.
    let db_b64 = "cHJvZC1kYi1wYTU1d29yZC03ZjNh";
    assert!(
        output.contains("db=[redacted]") && !output.contains(db),
        "{output}"
    );
    assert!(
        output.contains("b64=[redacted]") && !output.contains(db_b64),
        "{output}"
    );
    assert!(
        output.contains("k=[redacted] app_env=production charset=utf8mb4 port=3306")
            && !output.contains(k),
        "{output}"
    );
    tap.expect_run("test.passed.production", run1, WAIT)
        .await
        .unwrap();

    let run2 = start_run(&cfg, &g.project, "v2", &v2).await;
    let failed = tap
        .expect_run("test.failed.staging", run2, WAIT)
        .await
        .unwrap();
    let Event::TestFailed(f) = &failed.event else {
        panic!()
    };
    let check = &f.report.as_ref().unwrap().checks[0];
    assert!(!check.passed);
    assert_eq!(
        check.detail.as_deref(),
        Some("the test container exited with 1")
    );
    tap.expect_run("deploy.rolled_back.staging", run2, WAIT)
        .await
        .unwrap();
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("v1"));
    // The committer's message leads with the failed revision and says what runs now.
    let told = wait_for_hook(&hooks).await;
    assert_eq!(
        told["title"],
        format!("{} v2 · staging: rolled back to v1", g.project)
    );
    let facts: Vec<String> = told["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["label"].as_str().unwrap(),
                f["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        facts.contains(&format!("Running now: v1 · {v1}")),
        "{facts:?}"
    );
    assert!(
        facts.contains(&format!("Rolled back from: v2 · {v2}")),
        "{facts:?}"
    );
    // The cause quotes the test container's command, which echoes the .env's secrets.
    let all = told.to_string();
    assert!(!all.contains(k) && !all.contains(db), "{told}");
    assert!(all.contains("app_env=production charset=utf8mb4"), "{told}");
    assert_eq!(g.serving(g.production).await.as_deref(), Some("v1"));
    stack.stop().await;
    g.cleanup();
}

/// A `deploy.succeeded.staging` for `image`, as the updater would announce it.
async fn announce_deployed(cfg: &FerryConfig, project: &str, rev: &str, image: &str) -> Uuid {
    let deployed = Event::DeploySucceeded(DeploySucceeded {
        revision: rev.into(),
        image: image.into(),
        previous_image: None,
        hosts: vec![],
    });
    start_in_staging(cfg, project, deployed).await
}

/// The tester judges the container of the run it was told about, never whatever runs
/// there now: a run replaced before its tests ends as superseded, a deploy that found
/// its digest already running is tested on that container, and a run whose container
/// stopped fails (rather than being retried for minutes).
#[tokio::test]
async fn the_tester_tests_the_runs_own_container_or_says_why_it_cannot() {
    let g = Gate::new();
    let checks = format!(
        r#"
        [[projects.{p}.tests.checks]]
        url = "/"
        body_contains = ["v1"]
        "#,
        p = g.project
    );
    // Held before production: this test is about staging.
    let cfg = g.config(r#"approval = "manual""#, &checks);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let v1 = g.image("v1", true);
    let run1 = start_run(&cfg, &g.project, "v1", &v1).await;
    tap.expect_run("test.passed.staging", run1, WAIT)
        .await
        .unwrap();

    // Another run's deploy, announced after run1 replaced it: not judged by v1's page.
    let (repo, _) = v1.split_once('@').unwrap();
    let gone = format!("{repo}@sha256:{}", "0".repeat(64));
    let replaced = announce_deployed(&cfg, &g.project, "v0", &gone).await;
    let superseded = tap
        .expect_run("deploy.superseded.staging", replaced, WAIT)
        .await
        .unwrap();
    let Event::DeploySuperseded(s) = &superseded.event else {
        panic!()
    };
    assert_eq!(
        (s.running_run_id, s.running_image.as_str()),
        (run1, v1.as_str())
    );

    // A run whose digest was already running: tested on that container.
    let same = announce_deployed(&cfg, &g.project, "v1", &v1).await;
    tap.expect_run("test.passed.staging", same, WAIT)
        .await
        .unwrap();

    // Nothing runs any more: a failed test that says so.
    g.cleanup();
    let stopped = announce_deployed(&cfg, &g.project, "v1", &v1).await;
    let failed = tap
        .expect_run("test.failed.staging", stopped, WAIT)
        .await
        .unwrap();
    let Event::TestFailed(f) = &failed.event else {
        panic!()
    };
    let check = &f.report.as_ref().unwrap().checks[0];
    assert_eq!(check.name, "running");
    assert!(
        check
            .detail
            .as_deref()
            .unwrap()
            .contains("stopped after its deploy"),
        "{check:?}"
    );
    let early = tap.drain(Duration::from_secs(1)).await;
    assert!(
        !early
            .iter()
            .any(|e| e.run_id == replaced && e.routing_key().starts_with("test.")),
        "the replaced run was tested"
    );
    stack.stop().await;
    g.cleanup();
}

/// The first environment can be manual too: the run is held before anything is
/// deployed, and `ferry approve` lets it through.
#[tokio::test]
async fn a_manual_first_environment_is_held_before_its_first_deploy() {
    let mut g = Gate::new();
    g.staging_keys = "approval = \"manual\"".into();
    let checks = format!("[[projects.{}.tests.checks]]\nurl = \"/\"\n", g.project);
    let cfg = g.config(r#"approval = "manual""#, &checks);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let v1 = g.image("v1", true);
    let run = start_run(&cfg, &g.project, "v1", &v1).await;
    let held = tap
        .expect_run("approval.requested.staging", run, WAIT)
        .await
        .unwrap();
    let Event::ApprovalRequested(a) = &held.event else {
        panic!()
    };
    assert_eq!(
        (a.image.as_str(), a.passed_in.as_deref()),
        (v1.as_str(), None)
    );
    let early = tap.drain(Duration::from_secs(2)).await;
    assert!(
        !early.iter().any(|e| e.routing_key().starts_with("deploy.")),
        "deployed before approval: {:?}",
        early.iter().map(Envelope::routing_key).collect::<Vec<_>>()
    );
    assert_eq!(g.serving(g.staging).await, None);

    let out = ferry(&stack, &["approve", &run.to_string()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tap.expect_run("deploy.succeeded.staging", run, WAIT)
        .await
        .unwrap();
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("v1"));
    // Production is manual as well: held again after staging's tests.
    tap.expect_run("approval.requested.production", run, WAIT)
        .await
        .unwrap();
    stack.stop().await;
    g.cleanup();
}

/// A generic-webhook endpoint on loopback: every JSON body it is sent.
async fn webhook_sink() -> (u16, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                if let Ok(v) = serde_json::from_str(&body) {
                    store.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, bodies)
}

/// The first body the sink received (waiting up to 20 s for it).
async fn wait_for_hook(bodies: &std::sync::Mutex<Vec<serde_json::Value>>) -> serde_json::Value {
    for _ in 0..200 {
        if let Some(b) = bodies.lock().unwrap_or_else(|p| p.into_inner()).first() {
            return b.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no notification reached the webhook sink in 20 s");
}

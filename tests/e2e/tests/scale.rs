//! `ferry scale` end to end: the CLI, the operator API, the bus and the updater on real
//! Docker hosts, with `--wait` following the request to its end.

mod common;

use common::gate::*;
use common::stack::spawn_stack;
use ferry_testkit::{Tap, amqp_url, docker_hosts, free_port};

#[tokio::test]
async fn ferry_scale_runs_more_replicas_and_says_why_it_cannot() {
    ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
    let mut g = Gate::new();
    // Room for a second replica in staging, not a third.
    g.staging_spare = vec![free_port(), free_port()];
    let dir = tempfile::tempdir().unwrap();
    let svn_url = svn_web_project(dir.path(), 1);
    let source = format!(r#"{{ kind = "svn", url = "{svn_url}", path = "/trunk/web" }}"#);
    let checks = format!(
        "[[projects.{}.tests.checks]]\nurl = \"/healthz\"\n",
        g.project
    );
    let cfg = g.config_with("", &checks, &source, &build_table(dir.path()));
    let mut tap = Tap::new(&amqp_url(), &g.ns, "scale.#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let p = g.project.as_str();
    let wait = ["--wait", "--timeout-secs", "120"];
    ok(&ferry(
        &stack,
        &[&["deploy", p, "--revision", "1"][..], &wait].concat(),
    )
    .await);

    let out = ok(&ferry(
        &stack,
        &[&["scale", p, "--env", "staging", "--to", "2"][..], &wait].concat(),
    )
    .await);
    assert!(out.contains("done: scale.succeeded.staging"), "{out}");
    let run = run_id_in(&out);
    let asked = tap
        .expect_run("scale.requested.staging", run, WAIT)
        .await
        .unwrap();
    assert_eq!(
        asked.started_by,
        Some(ferry_shared::event::Starter::Operator("alice".into()))
    );
    // The new replica serves the release on the first port of its own pair.
    let spare = [g.staging_spare[0], g.staging_spare[1]];
    assert_eq!(g.serving(spare).await.as_deref(), Some("r1"));
    assert_eq!(g.serving(g.staging).await.as_deref(), Some("r1"));

    let out = ferry(
        &stack,
        &[&["scale", p, "--env", "staging", "--to", "3"][..], &wait].concat(),
    )
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    // --wait printed the failure's reason as it came.
    assert!(text.contains("deploy.failed.staging"), "{text}");
    assert!(
        text.contains("has ports for 2 replica(s) per host, not 3"),
        "{text}"
    );
    stack.stop().await;
}

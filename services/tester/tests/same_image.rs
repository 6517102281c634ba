//! `image = "same"` runs the image a `deploy.succeeded` names: a forged event (any broker
//! user that can publish one) naming an image that is not the project's must not get it
//! run. The container would call back to a listener on loopback; nothing may call.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeploySucceeded, Envelope, Event};
use ferry_testkit::{Tap, amqp_url, docker_hosts, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test]
async fn a_forged_deploy_naming_a_foreign_image_runs_no_test_container() {
    let ns = unique_namespace();
    // Present on the host and able to call back: only its repository is wrong.
    let evil =
        ferry_testkit::web_image(&docker_hosts()[0], &format!("evil-{ns}"), "v1", true).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let server = tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [services.tester]
        admin_listen = "127.0.0.1:0"
        [docker_hosts.h1]
        url = "{h1}"
        [environments.staging]
        base_url = "http://127.0.0.1:{port}"
        [projects.web]
        image = "web"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        [projects.web.tests]
        wait_until_healthy_secs = 0
        [projects.web.tests.container]
        image = "same"
        host = "h1"
        command = ["/bin/sh", "-c", "wget -q -O - http://127.0.0.1:{port}/ran"]
        timeout_secs = 30
        network = "host"
        "#,
        amqp = amqp_url(),
        h1 = docker_hosts()[0],
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap());
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = ferry_testkit::spawn_stage(
        &cfg,
        tester::spec(),
        tester::DEFAULTS,
        tester::Stage::new(cfg.clone()),
    )
    .await;
    let mut deployed = Envelope::new_run(
        "web",
        Event::DeploySucceeded(DeploySucceeded {
            revision: "abc".into(),
            image: evil.clone(),
            previous_image: None,
            hosts: vec![],
        }),
    );
    deployed.environment = Some("staging".into());
    Publisher::new(&cfg.broker, "test", None)
        .publish(&deployed)
        .await
        .unwrap();
    let failed = tap
        .expect_run(
            "test.failed.staging",
            deployed.run_id,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    stage.stop().await;
    server.abort();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the foreign image ran as the test container"
    );
    let Event::TestFailed(f) = &failed.event else {
        panic!("{failed:?}")
    };
    assert!(
        f.failure.reason.contains(&format!("ferry-test/evil-{ns}"))
            && f.failure.reason.contains("not project `web`"),
        "{}",
        f.failure.reason
    );
    assert!(!tap.saw("test.passed.staging", |e| e.run_id == deployed.run_id));
}

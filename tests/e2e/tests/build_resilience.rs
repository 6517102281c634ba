//! Builds and pushes that meet trouble: a builder killed mid-build, a registry that is
//! down for a while.

mod common;

use common::build::*;
use ferry_shared::event::Event;
use ferry_testkit::{Tap, amqp_url, free_port, harness_var, wait_until};
use std::process::{Child, Command};
use std::time::Duration;

const SLOW_DOCKERFILE: &str = "FROM ferry-test/busybox:1\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo building; sleep 4; echo built\"]\n";

/// Tags the registry holds for a repository.
fn registry_tags(registry: &str, repository: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-u"])
        .arg(format!(
            "{}:{}",
            harness_var("FERRY_TEST_REGISTRY_USER"),
            harness_var("FERRY_TEST_REGISTRY_PASSWORD")
        ))
        .arg(format!("http://{registry}/v2/{repository}/tags/list"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_builder_killed_mid_build_builds_again_once_and_one_image_is_pushed() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let admin = free_port();
    let s = setup_with(
        &format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}"),
        &harness_var("FERRY_TEST_REGISTRY"),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        SLOW_DOCKERFILE,
        "",
    );
    std::fs::write(
        &s.config_path,
        std::fs::read_to_string(&s.config_path).unwrap().replace(
            "[services.builder]\n        admin_listen = \"127.0.0.1:0\"",
            &format!("[services.builder]\n        admin_listen = \"127.0.0.1:{admin}\""),
        ),
    )
    .unwrap();
    let mut tap = Tap::new(&amqp_url(), &s.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let pusher = start_pusher(&s.cfg).await;
    let spawn = || {
        Reap(
            Command::new(builder_binary())
                .env("FERRY_CONFIG", &s.config_path)
                .spawn()
                .unwrap(),
        )
    };
    let first = spawn();
    let metrics = format!("127.0.0.1:{admin}").parse().unwrap();
    let in_flight = || async move {
        ferry_testkit::http_request(metrics, "GET", "/metrics", &[], b"")
            .await
            .is_ok_and(|(_, body)| body.contains("ferry_in_flight{service=\"builder\"} 1"))
    };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ferry_testkit::http_request(metrics, "GET", "/readyz", &[], b"")
                .await
                .is_ok_and(|(c, _)| c == 200)
        })
        .await
    );
    trigger(&s.cfg, "1").await;
    assert!(
        wait_until(Duration::from_secs(20), in_flight).await,
        "the build never started"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await; // inside `sleep 4`
    drop(first); // SIGKILL

    let _second = spawn();
    let built = tap
        .expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(built.run_id, pushed.run_id);
    let later = tap.drain(Duration::from_secs(3)).await;
    assert!(
        later
            .iter()
            .all(|e| !matches!(e.event, Event::ImageBuilt(_) | Event::ImagePushed(_))),
        "built or pushed twice: {:?}",
        later.iter().map(|e| e.routing_key()).collect::<Vec<_>>()
    );
    let repository = s.cfg.projects["shop"].image.clone();
    assert_eq!(
        registry_tags(&harness_var("FERRY_TEST_REGISTRY"), &repository)["tags"],
        serde_json::json!(["1"])
    );
    pusher.stop().await;
}

#[tokio::test]
async fn a_registry_that_is_down_then_up_gets_the_image_after_a_retry() {
    // A registry of this test's own, started only after the first push attempt failed.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = Command::new("htpasswd")
        .args([
            "-Bbn",
            &harness_var("FERRY_TEST_REGISTRY_USER"),
            &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        ])
        .output()
        .unwrap();
    std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "version: 0.1\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\nauth: {{ htpasswd: {{ realm: ferry, path: {} }} }}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        ),
    )
    .unwrap();
    let registry = format!("127.0.0.1:{port}");

    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let s = setup_with(
        &format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}"),
        &registry,
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
        "",
    );
    let mut cfg = (*s.cfg).clone();
    cfg.broker.retry_delays_ms = vec![2_000];
    cfg.broker.max_attempts = 6;
    let cfg = std::sync::Arc::new(cfg);
    let mut tap = Tap::new(&amqp_url(), &cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&cfg).await;
    trigger(&cfg, "1").await;
    tap.expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    // The first push fails (nothing listens), then the registry comes up.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _registry = Reap(
        Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .spawn()
            .unwrap(),
    );
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    assert!(p.image.starts_with(&format!("{registry}/")), "{}", p.image);
    let pusher = stages.metrics.last().unwrap();
    assert!(
        pusher.retried.get() >= 1,
        "the push did not fail before the registry came up"
    );
    stages.stop().await;
}

//! The seven services in one process, over the real RabbitMQ: a manual trigger runs
//! through every (placeholder) stage to production.

mod common;

use common::stack::spawn_stack;
use ferry_shared::config::FerryConfig;
use ferry_shared::shutdown;
use ferry_testkit::{Tap, amqp_url, broker_config, http_request};
use hook_receiver::HookReceiver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn config(url: &str) -> Arc<FerryConfig> {
    let ns = broker_config(url).namespace;
    let mut text = format!(
        r#"
        [broker]
        url = "{url}"
        namespace = "{ns}"
        [hooks]
        manual_token = "manual-token-1"
        harbor_auth = "Basic aGFyYm9yOmhvb2s="
        [registry]
        address = "hub.harbor.com"
        username = "robot$ferry"
        password = "registry-password-1"
        [environments.staging]
        [environments.production]
        [projects.shop]
        image = "shop/web"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/shop", path = "/trunk" }}
        [projects.debian]
        image = "test-webhook/debian"
        environments = ["staging", "production"]
        source = {{ kind = "git", url = "https://example.com/debian.git" }}
        "#
    );
    // Port 0 everywhere: tests run side by side.
    for svc in ferry_shared::SERVICES {
        text.push_str(&format!(
            "[services.{}]\nadmin_listen = \"127.0.0.1:0\"\n",
            svc.replace('-', "_")
        ));
        if svc == hook_receiver::SERVICE {
            text.push_str("listen = \"127.0.0.1:0\"\n");
        }
    }
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

async fn post(addr: SocketAddr, body: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_request(
        addr,
        "POST",
        "/hooks/manual",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer manual-token-1"),
        ],
        body.as_bytes(),
    )
    .await
    .unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// A Harbor push skips build and push (those stages are tested against real
/// svnserve, Docker and registry in the builder's tests) and runs every later stage.
#[tokio::test]
async fn a_harbor_image_runs_every_later_stage_to_production() {
    let cfg = config(&amqp_url());
    let mut tap = Tap::new(&amqp_url(), &cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stack = spawn_stack(cfg).await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/hooks/tests/fixtures/harbor-push-artifact.json"
    ))
    .unwrap();
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", "Basic aGFyYm9yOmhvb2s="),
    ];
    let (status, reply) = http_request(stack.hooks, "POST", "/hooks/harbor", &headers, &body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let run_id = reply["run_ids"][0].as_str().unwrap().to_owned();

    for key in [
        "image.pushed",
        "image.pulled.staging",
        "deploy.started.staging",
        "deploy.succeeded.staging",
        "test.passed.staging",
        "deploy.succeeded.production",
        "test.passed.production",
    ] {
        let event = tap.expect(key, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            event.run_id.to_string(),
            run_id,
            "{key} belongs to another run"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn bad_triggers_get_a_json_reason_and_publish_nothing() {
    let cfg = config(&amqp_url());
    let mut tap = Tap::new(&amqp_url(), &cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stack = spawn_stack(cfg).await;
    for (body, expected) in [
        (r#"{"project":"nope","revision":"1"}"#, 404),
        (r#"{"project":"shop","revision":"  "}"#, 400),
        (r#"{"project":"shop"}"#, 400),
        (r#"{not json"#, 400),
    ] {
        let (status, reply) = post(stack.hooks, body).await;
        assert_eq!(status, expected, "{body} -> {reply}");
        assert!(
            reply["error"].is_string(),
            "no JSON reason for {body}: {reply}"
        );
    }
    assert!(
        tap.drain(Duration::from_millis(500)).await.is_empty(),
        "a rejected trigger published something"
    );
    stack.stop().await;
}

#[tokio::test]
async fn without_a_broker_a_trigger_gets_503_not_202() {
    let port = ferry_testkit::free_port();
    let cfg = config(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f"));
    let receiver = HookReceiver::bind(cfg).await.unwrap();
    let addr = receiver.addr;
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(receiver.run_until_stopped(stop.wait_owned()));
    let (status, reply) = post(addr, r#"{"project":"shop","revision":"1"}"#).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("try again"));
    trigger.trigger();
    task.await.unwrap().unwrap();
}

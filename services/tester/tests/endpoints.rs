//! The tester finds a deploy where `deploy.succeeded` says it answers: no Docker host
//! has to be read for that.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeploySucceeded, Endpoint, Envelope, Event, HostOutcome, HostTiming};
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// An application answering `revision` on a loopback port; the port.
async fn app(revision: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || async move { revision });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn a_deploy_is_tested_where_deploy_succeeded_says_it_answers() {
    let port = app("v7").await;
    let ns = unique_namespace();
    // The environment's only Docker host cannot be reached: nothing can be read there.
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [services.tester]
        admin_listen = "127.0.0.1:0"
        [docker_hosts.away]
        url = "tcp://127.0.0.1:1"
        [environments.staging]
        hosts = ["away"]
        [projects.web]
        image = "web"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        [projects.web.tests]
        wait_until_healthy_secs = 0
        [[projects.web.tests.checks]]
        url = "/"
        body_contains = ["v7"]
        "#,
        amqp = amqp_url(),
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
            revision: "7".into(),
            image: "127.0.0.1:5000/web:7@sha256:00".into(),
            previous_image: None,
            hosts: vec![HostTiming {
                host: "away".into(),
                millis: 5,
                outcome: HostOutcome::Updated,
                endpoint: Some(Endpoint {
                    address: "127.0.0.1".into(),
                    port,
                }),
            }],
        }),
    );
    deployed.environment = Some("staging".into());
    Publisher::new(&cfg.broker, "test", None)
        .publish(&deployed)
        .await
        .unwrap();
    tap.expect_run(
        "test.passed.staging",
        deployed.run_id,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    stage.stop().await;
}

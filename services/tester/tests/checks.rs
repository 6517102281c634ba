//! The tester against a real application on loopback that tries to make Ferry quote
//! what it should not: a redirect to another local port serving a "secret" page, a
//! body too large to read, and a check header marked secret that the application
//! echoes. The published `test.failed` event is read from RabbitMQ.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeploySucceeded, Envelope, Event};
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const INTERNAL_SECRET: &str = "internal-metadata-secret-7f3a";
const HEADER_TOKEN: &str = "hdr-token-9c21e8d4";
const NEEDLE: &str = "NEEDLE-AT-THE-END";

/// An "internal" service on its own port: counts its requests.
async fn internal(hits: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async { INTERNAL_SECRET }
    });
    serve(app).await
}

/// The staging application under test, whose redirects point at `internal`.
async fn app(internal: String) -> String {
    let to_internal = format!("{internal}/latest/meta-data");
    let app = axum::Router::new()
        .route(
            "/hop",
            axum::routing::get(move || async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, to_internal)],
                    "moved",
                )
            }),
        )
        .route(
            "/local",
            axum::routing::get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")], "") }),
        )
        .route("/ok", axum::routing::get(|| async { "healthy" }))
        .route(
            "/huge",
            axum::routing::get(|| async {
                let mut body = "x".repeat(8 * 1024 * 1024);
                body.push_str(NEEDLE);
                body
            }),
        )
        .route(
            "/echo",
            axum::routing::get(|headers: HeaderMap| async move {
                let token = headers
                    .get("x-api-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("debug: token={token}"),
                )
                    .into_response()
            }),
        );
    serve(app).await
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn config(ns: &str, base_url: &str) -> Arc<FerryConfig> {
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [services.tester]
        admin_listen = "127.0.0.1:0"
        [environments.staging]
        base_url = "{base_url}"
        [projects.web]
        image = "web"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        [projects.web.tests]
        wait_until_healthy_secs = 0
        [[projects.web.tests.checks]]
        name = "hop"
        url = "/hop"
        body_contains = ["healthy"]
        [[projects.web.tests.checks]]
        name = "hop-follow"
        url = "/hop"
        follow_redirects = true
        body_contains = ["healthy"]
        [[projects.web.tests.checks]]
        name = "local-follow"
        url = "/local"
        follow_redirects = true
        body_contains = ["healthy"]
        [[projects.web.tests.checks]]
        name = "huge"
        url = "/huge"
        body_contains = ["{NEEDLE}"]
        [[projects.web.tests.checks]]
        name = "echo"
        url = "/echo"
        headers = {{ "X-Api-Token" = {{ secret = "{HEADER_TOKEN}" }} }}
        "#,
        amqp = amqp_url(),
    );
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

#[tokio::test]
async fn a_check_never_quotes_a_redirect_target_a_huge_body_or_a_secret_header() {
    let hits = Arc::new(AtomicUsize::new(0));
    let internal = internal(hits.clone()).await;
    let base = app(internal.clone()).await;
    let ns = unique_namespace();
    let cfg = config(&ns, &base);
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
            image: "127.0.0.1:5000/web:abc".into(),
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

    let json = serde_json::to_string(&failed).unwrap();
    assert!(
        !json.contains(INTERNAL_SECRET),
        "the redirect target was quoted: {json}"
    );
    assert!(
        !json.contains(HEADER_TOKEN),
        "the secret header was quoted: {json}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was fetched"
    );
    assert!(
        json.len() < 64 * 1024,
        "the event quotes too much: {} bytes",
        json.len()
    );

    let Event::TestFailed(f) = &failed.event else {
        panic!("not test.failed: {json}")
    };
    let checks = &f.report.as_ref().unwrap().checks;
    let check = |name: &str| checks.iter().find(|c| c.name == name).unwrap();
    for name in ["hop", "hop-follow"] {
        let detail = check(name).detail.clone().unwrap_or_default();
        assert!(!check(name).passed);
        assert!(detail.contains("got 302"), "{name}: {detail}");
        assert!(detail.contains("/latest/meta-data"), "{name}: {detail}");
    }
    assert!(
        check("hop-follow")
            .detail
            .as_ref()
            .unwrap()
            .contains("another scheme, host or port")
    );
    assert!(check("local-follow").passed, "{:?}", check("local-follow"));
    let huge = check("huge");
    assert!(!huge.passed, "the needle after 8 MiB was read: {huge:?}");
    assert!(
        huge.detail
            .as_ref()
            .unwrap()
            .contains("only the first 1048576 bytes")
    );
    let echo = check("echo").detail.clone().unwrap();
    assert!(echo.contains("token=[redacted]"), "{echo}");
}

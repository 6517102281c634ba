//! The load generator against a tiny in-process server: counts successes and bodies,
//! then failures once the server is gone.

use ferry_testkit::load::Load;
use std::time::Duration;

#[tokio::test]
async fn counts_responses_and_failures() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "v1\n" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let load = Load::start(addr, "/", 4, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;
    println!("against the server: {report:?}");
    assert!(report.sent > 50, "too few requests: {report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.sent, report.ok, "{report:?}");
    assert_eq!(report.bodies.get("v1"), Some(&report.ok), "{report:?}");
    assert!(report.samples.is_empty(), "{report:?}");

    // The server is gone: connections are refused, and counted as failures.
    server.abort();
    let _ = server.await;
    let load = Load::start(addr, "/", 4, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    println!("against the closed port: {report:?}");
    assert!(report.failed > 0, "{report:?}");
    assert_eq!(report.ok, 0, "{report:?}");
    assert_eq!(report.sent, report.failed, "{report:?}");
    assert!(
        !report.samples.is_empty() && report.samples.len() <= 20,
        "{report:?}"
    );
    assert!(report.bodies.is_empty(), "{report:?}");
}

#[tokio::test]
async fn stops_by_itself_after_max_duration() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "v1" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let load = Load::start(addr, "/", 2, Duration::from_millis(300));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = load.snapshot().sent;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    assert!(report.sent > 0, "{report:?}");
    assert_eq!(
        report.sent, before,
        "still sending after max_duration: {report:?}"
    );
    server.abort();
}

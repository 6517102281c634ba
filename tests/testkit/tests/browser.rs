//! The harness's headless Chromium ([`ferry_testkit::browser`], chromedriver started by
//! `tests/run.sh`) loads a real page from a server in this test, runs its script, and
//! takes a screenshot: what browser tests of Ferry's web dashboard build on.

use axum::http::header;
use axum::response::Html;
use std::time::Duration;

/// A form whose button greets whoever was typed in, by script (no navigation), and sets a
/// cookie; the server sets one too (HttpOnly: only WebDriver, not the script, sees it).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Ferry browser test</title></head>
<body>
  <h1>Browser test</h1>
  <form id="greet">
    <input id="name" name="name" value="nobody">
    <button id="go" type="submit">Greet</button>
  </form>
  <p id="status">waiting</p>
  <script>
    document.getElementById("greet").addEventListener("submit", (e) => {
      e.preventDefault();
      const name = document.getElementById("name").value;
      document.getElementById("status").textContent = "Hello, " + name + "!";
      document.cookie = "greeted=" + encodeURIComponent(name) + "; path=/";
    });
  </script>
</body>
</html>
"#;

#[tokio::test]
async fn a_page_s_script_runs_in_the_headless_browser_and_its_screenshot_is_a_png() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            (
                [(header::SET_COOKIE, "ferry_session=s3cr3t; Path=/; HttpOnly")],
                Html(PAGE),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = ferry_testkit::browser::open().await.unwrap();
    browser.goto(&format!("http://{addr}/")).await.unwrap();
    assert_eq!(browser.text("#status").await.unwrap(), "waiting");
    assert_eq!(
        browser.cookie("ferry_session").await.unwrap().as_deref(),
        Some("s3cr3t")
    );
    assert_eq!(browser.cookie("greeted").await.unwrap(), None);

    browser.fill("#name", "Ferry").await.unwrap();
    browser.click("#go").await.unwrap();
    let status = browser
        .wait_for_text("#status", "Hello", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, "Hello, Ferry!");
    assert_eq!(
        browser.cookie("greeted").await.unwrap().as_deref(),
        Some("Ferry")
    );

    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shots/page.png");
    browser.screenshot(&shot).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    // Larger than an empty image: the page was rendered (1280 wide, text on it).
    assert!(png.len() > 5_000, "screenshot of {} bytes", png.len());
    browser.close().await.unwrap();
}

//! A real headless Chromium for browser tests of Ferry's web dashboard, driven over WebDriver
//! through the harness's chromedriver (`tests/lib/components.sh`: `chromedriver`).
//!
//! Each [`open`] starts a Chromium of its own, with a fresh profile directory: tests run in
//! parallel, and two Chromiums on one profile refuse to start (the profile is locked).
//!
//! ```ignore
//! let browser = ferry_testkit::browser::open().await?;
//! browser.goto(&format!("http://{addr}/")).await?;
//! browser.click("#approve").await?;
//! browser.wait_for_text("#status", "approved", Duration::from_secs(5)).await?;
//! browser.close().await?;
//! ```

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a new session (a Chromium starting) may take: on a loaded CI machine with
/// several tests starting browsers at once, a few seconds is normal.
const NEW_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// One headless Chromium session. End it with [`Browser::close`]; dropping it ends the
/// session too (best effort), so a failing test does not leave its Chromium running.
pub struct Browser {
    /// The WebDriver client, for whatever the helpers below do not cover.
    pub client: Client,
    /// chromedriver's address and this session's id, for the blocking end in `Drop`;
    /// `None` once the session is closed.
    session: Option<(String, String)>,
    /// The profile (`--user-data-dir`); removed when the `Browser` is dropped, after the
    /// session ended (fields drop after `Drop::drop`).
    _profile: tempfile::TempDir,
}

/// A new headless Chromium session on the harness's chromedriver
/// (`FERRY_TEST_WEBDRIVER_URL`), with a fresh profile under `FERRY_TEST_BROWSER_DIR`.
pub async fn open() -> anyhow::Result<Browser> {
    let webdriver = crate::harness_var("FERRY_TEST_WEBDRIVER_URL");
    let chromium = crate::harness_var("FERRY_TEST_CHROMIUM_BIN");
    let dir = crate::harness_var("FERRY_TEST_BROWSER_DIR");
    let profile = tempfile::Builder::new()
        .prefix("profile-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a browser profile under {dir}"))?;
    // --no-sandbox: the harness runs as root, where Chromium's sandbox refuses to start;
    // --disable-dev-shm-usage: shared memory in TMPDIR (the harness's private one), as
    // containers' /dev/shm is often tiny. The window size is the whole window: the viewport
    // is smaller by Chromium's toolbar.
    let options = serde_json::json!({
        "binary": chromium,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--lang=en-US",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    });
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert("goog:chromeOptions".into(), options);
    // Plain HTTP to 127.0.0.1: fantoccini without its TLS features, on hyper's own connector.
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    let client = tokio::time::timeout(NEW_SESSION_TIMEOUT, builder.connect(&webdriver))
        .await
        .with_context(|| {
            format!("no new browser session from {webdriver} within {NEW_SESSION_TIMEOUT:?}")
        })?
        .with_context(|| format!("new browser session from chromedriver at {webdriver}"))?;
    let session = client.session_id().await?.map(|id| (webdriver, id));
    Ok(Browser {
        client,
        session,
        _profile: profile,
    })
}

impl Browser {
    /// Navigates to `url` and waits for the page to load (WebDriver's default strategy).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// A screenshot of the viewport, written as PNG to `path` (parent directories created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .context("taking a screenshot")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// The rendered text of the first element matching `css` (fails if there is none).
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css).await?;
        Ok(element.text().await?)
    }

    /// Polls until an element matching `css` contains `needle` in its rendered text, and
    /// returns that text: pages change after a script or a fetch, not on navigation.
    pub async fn wait_for_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            // An element replaced while it is read (stale) is an answer for the next round.
            let mut seen = Vec::new();
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if let Ok(text) = element.text().await {
                        if text.contains(needle) {
                            return Ok(text);
                        }
                        seen.push(text);
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("no element `{css}` contained {needle:?} within {timeout:?}; seen: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> anyhow::Result<usize> {
        Ok(self.client.find_all(Locator::Css(css)).await?.len())
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        element
            .click()
            .await
            .with_context(|| format!("clicking `{css}`"))
    }

    /// Replaces the value of the first input matching `css` with `value`, typed as a user
    /// would (so the page's input events fire).
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        element.clear().await?;
        element
            .send_keys(value)
            .await
            .with_context(|| format!("typing into `{css}`"))
    }

    /// The value of the current page's cookie `name`, if it has one.
    pub async fn cookie(&self, name: &str) -> anyhow::Result<Option<String>> {
        match self.client.get_named_cookie(name).await {
            Ok(cookie) => Ok(Some(cookie.value().to_owned())),
            Err(e) if e.is_no_such_cookie() => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading cookie {name}")),
        }
    }

    /// Ends the session: chromedriver quits this Chromium.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.client
            .clone()
            .close()
            .await
            .context("ending the browser session")?;
        // Ended: nothing left for `Drop` but the profile directory.
        self.session = None;
        Ok(())
    }

    async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding `{css}`"))
    }
}

impl Drop for Browser {
    /// A session nobody closed (a test failed on the way): ends it with a blocking
    /// `DELETE /session/{id}`. fantoccini's own clean-up runs on the async runtime, which a
    /// test's runtime being dropped cancels, and chromedriver never times sessions out: its
    /// Chromium would stay until the harness stops. Errors are ignored; the harness removes
    /// what is left.
    fn drop(&mut self) {
        let Some((webdriver, id)) = self.session.take() else {
            return;
        };
        let Some(addr) = webdriver
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse::<std::net::SocketAddr>().ok())
        else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once Chromium has quit: the first bytes are enough (it keeps
            // the connection open, whatever `Connection: close` says).
            let _ = stream.read(&mut [0; 512]);
        }
    }
}

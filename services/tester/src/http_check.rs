//! One HTTP check of a test plan: send the request, compare what came back with what
//! the plan expects, and say both when they differ.
//!
//! What the application answers is quoted into events and chat, so the application
//! must not be able to choose what Ferry fetches: redirects are not followed unless
//! the check asks (`follow_redirects`), and then only to the same scheme, host and
//! port; an unfollowed redirect is reported as the 3xx and its `Location`. Bodies are
//! read up to [`MAX_BODY`] bytes, and a failure quotes a short excerpt.

use ferry_shared::event::CheckResult;
use ferry_shared::test_plan::HttpCheck;
use std::time::{Duration, Instant};

/// The most of a response body quoted in a failure.
const QUOTED_BODY: usize = 300;
/// The most of a response body read (and matched against `body_contains`, ...).
pub const MAX_BODY: usize = 1024 * 1024;
/// Redirects followed at most by a check with `follow_redirects`.
const MAX_REDIRECTS: usize = 5;

/// The tester's HTTP client: it never follows a redirect by itself (see the module
/// documentation), and keeps no idle connection to the application: a kept-alive
/// connection held the old release's nginx in its graceful stop for its whole
/// `worker_shutdown_timeout` at the next deploy (the shop example: 3 s, one deploy in
/// three).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("ferry-tester/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

/// Run `check` against `base_url`. With `wait`, a failing check is tried again every
/// half second until it passes or `wait` has passed ("wait until healthy").
pub async fn run(
    client: &reqwest::Client,
    base_url: Option<&str>,
    check: &HttpCheck,
    wait: Option<Duration>,
) -> CheckResult {
    let started = Instant::now();
    let deadline = wait.map(|w| started + w);
    let mut attempts = 0u32;
    // Retries while the app comes up: soon at first, then every 500 ms.
    let mut pause = Duration::from_millis(50);
    loop {
        attempts += 1;
        let result = once(client, base_url, check).await;
        let again = deadline.is_some_and(|d| Instant::now() + pause < d);
        if result.is_ok() || !again {
            let detail = match (result, attempts) {
                (Ok(()), _) => None,
                (Err(why), 1) => Some(why),
                (Err(why), n) => Some(format!(
                    "{why} (still failing after {n} attempts over {:.1} s)",
                    started.elapsed().as_secs_f64()
                )),
            };
            return CheckResult {
                name: check.display_name(),
                passed: detail.is_none(),
                millis: started.elapsed().as_millis() as u64,
                detail,
            };
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

pub fn url(base_url: Option<&str>, path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        path.to_owned()
    } else {
        format!(
            "{}{path}",
            base_url.unwrap_or_default().trim_end_matches('/')
        )
    }
}

async fn once(
    client: &reqwest::Client,
    base_url: Option<&str>,
    c: &HttpCheck,
) -> Result<(), String> {
    let url = url(base_url, &c.url);
    let method = reqwest::Method::from_bytes(c.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", c.method))?;
    let sent = Instant::now();
    let target = reqwest::Url::parse(&url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    let (mut response, unfollowed) = send(client, &method, target, c)
        .await
        .map_err(|e| format!("{url}: no answer: {}", describe(&e)))?;
    let latency = sent.elapsed();
    let status = response.status().as_u16();
    let (body, cut) = read_capped(&mut response, MAX_BODY)
        .await
        .map_err(|e| format!("{url}: the body could not be read: {}", describe(&e)))?;
    let mut problems = status_problems(c, status, unfollowed);
    problems.extend(body_problems(c, &body));
    if let Some(max) = c.max_latency_ms
        && latency > Duration::from_millis(max)
    {
        problems.push(format!(
            "expected an answer within {max} ms, took {} ms",
            latency.as_millis()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    if cut {
        problems.push(format!(
            "only the first {MAX_BODY} bytes of the body were read and matched"
        ));
    }
    Err(format!(
        "{} {url}: {}; the body was: {}",
        c.method,
        problems.join("; "),
        quote(&body)
    ))
}

/// Send the check's request, following redirects only as the check allows (see the
/// module documentation): the answer, and why a redirect it carries was not followed.
async fn send(
    client: &reqwest::Client,
    method: &reqwest::Method,
    mut target: reqwest::Url,
    c: &HttpCheck,
) -> Result<(reqwest::Response, Option<String>), reqwest::Error> {
    let mut redirects = 0;
    loop {
        let mut req = client
            .request(method.clone(), target.clone())
            .timeout(Duration::from_secs(c.timeout_secs));
        for (k, v) in &c.headers {
            req = req.header(k, v.expose());
        }
        if let Some(body) = &c.body {
            req = req.body(body.clone());
        }
        let response = req.send().await?;
        let Some(location) = redirect_location(&response) else {
            return Ok((response, None));
        };
        let next = target.join(&location).ok();
        let why_not = match &next {
            _ if !c.follow_redirects => "redirects are not followed (follow_redirects = false)",
            None => "not a URL",
            Some(n) if !same_origin(&target, n) => "another scheme, host or port: not followed",
            Some(_) if redirects == MAX_REDIRECTS => "too many redirects: not followed",
            Some(_) => "",
        };
        match next {
            Some(n) if why_not.is_empty() => {
                redirects += 1;
                target = n;
            }
            _ => {
                return Ok((
                    response,
                    Some(format!("Location: {location:?} ({why_not})")),
                ));
            }
        }
    }
}

/// What is wrong with the answer's status (and a redirect not followed).
fn status_problems(c: &HttpCheck, status: u16, unfollowed: Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    match c.status {
        Some(want) if want != status => {
            problems.push(format!("expected status {want}, got {status}"))
        }
        None if !(200..300).contains(&status) => {
            problems.push(format!("expected a 2xx status, got {status}"));
        }
        _ => {}
    }
    // A redirect the check expects (`status = 302`) is an answer like any other.
    if let Some(location) = unfollowed.filter(|_| c.status != Some(status)) {
        problems.push(format!("redirected: {location}"));
    }
    problems
}

/// What is wrong with the body: text, pattern and JSON values the check expects.
fn body_problems(c: &HttpCheck, body: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for needle in &c.body_contains {
        if !body.contains(needle.as_str()) {
            problems.push(format!("expected the body to contain {needle:?}"));
        }
    }
    if let Some(re) = &c.body_regex {
        // Validated at start-up; an invalid one here would be a config reload race.
        match regex::Regex::new(re) {
            Ok(r) if !r.is_match(body) => {
                problems.push(format!("expected the body to match /{re}/"));
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("body_regex is invalid: {e}")),
        }
    }
    if c.json.is_empty() {
        return problems;
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Err(e) => problems.push(format!("expected a JSON body ({e})")),
        Ok(doc) => {
            for (pointer, want) in &c.json {
                match doc.pointer(pointer) {
                    Some(got) if got == want => {}
                    Some(got) => problems.push(format!("expected {pointer} = {want}, got {got}")),
                    None => problems.push(format!("expected {pointer} = {want}, it is missing")),
                }
            }
        }
    }
    problems
}

/// The `Location` of a redirect (3xx with one).
fn redirect_location(response: &reqwest::Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(reqwest::header::LOCATION)?;
    Some(String::from_utf8_lossy(location.as_bytes()).into_owned())
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The body up to `max` bytes (as text), and whether there was more. The rest is never
/// read: the connection is dropped.
async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<(String, bool), reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((String::from_utf8_lossy(&bytes).into_owned(), true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), false))
}

fn quote(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "(empty)".into();
    }
    let mut end = trimmed.len().min(QUOTED_BODY);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < trimmed.len() { "…" } else { "" };
    format!("{:?}{more}", &trimmed[..end])
}

/// reqwest's Display hides the cause (connection refused, timeout) in the source chain.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_join_the_base_url_and_absolute_ones_stay() {
        assert_eq!(
            url(Some("http://127.0.0.1:8080/"), "/healthz"),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(url(Some("http://a"), "http://b/x"), "http://b/x");
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(400);
        let q = quote(&body);
        assert!(q.ends_with('…'));
        assert!(q.len() < 400);
    }
}

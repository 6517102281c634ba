//! One HTTP check of a test plan: send the request, compare what came back with what
//! the plan expects, and say both when they differ.

use ferry_shared::event::CheckResult;
use ferry_shared::test_plan::HttpCheck;
use std::time::{Duration, Instant};

/// The most of a response body quoted in a failure.
const QUOTED_BODY: usize = 300;

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
    loop {
        attempts += 1;
        let result = once(client, base_url, check).await;
        let again = deadline.is_some_and(|d| Instant::now() + Duration::from_millis(500) < d);
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
        tokio::time::sleep(Duration::from_millis(500)).await;
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
    let mut req = client
        .request(method, &url)
        .timeout(Duration::from_secs(c.timeout_secs));
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &c.body {
        req = req.body(body.clone());
    }
    let sent = Instant::now();
    let response = req
        .send()
        .await
        .map_err(|e| format!("{url}: no answer: {}", describe(&e)))?;
    let latency = sent.elapsed();
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{url}: the body could not be read: {}", describe(&e)))?;
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
    for needle in &c.body_contains {
        if !body.contains(needle.as_str()) {
            problems.push(format!("expected the body to contain {needle:?}"));
        }
    }
    if let Some(re) = &c.body_regex {
        // Validated at start-up; an invalid one here would be a config reload race.
        match regex::Regex::new(re) {
            Ok(r) if !r.is_match(&body) => {
                problems.push(format!("expected the body to match /{re}/"));
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("body_regex is invalid: {e}")),
        }
    }
    if !c.json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&body) {
            Err(e) => problems.push(format!("expected a JSON body ({e})")),
            Ok(doc) => {
                for (pointer, want) in &c.json {
                    match doc.pointer(pointer) {
                        Some(got) if got == want => {}
                        Some(got) => {
                            problems.push(format!("expected {pointer} = {want}, got {got}"))
                        }
                        None => {
                            problems.push(format!("expected {pointer} = {want}, it is missing"))
                        }
                    }
                }
            }
        }
    }
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
    Err(format!(
        "{} {url}: {}; the body was: {}",
        c.method,
        problems.join("; "),
        quote(&body)
    ))
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

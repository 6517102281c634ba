//! The operator commands (`approve`, `reject`, `rollback`, `deploy`, `runs`): calls to
//! the hook-receiver's operator API with the operator's token.

use clap::Args;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where the operator API is, and who is asking.
#[derive(Args, Clone)]
pub struct Api {
    /// The hook-receiver's address [default: $FERRY_SERVER, else its `listen` from the
    /// configuration, else http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Operator token (one of [operators] in the configuration)
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// What went wrong, as an exit code after saying so.
fn fail(code: u8, why: impl std::fmt::Display) -> ExitCode {
    eprintln!("ferry: {why}");
    ExitCode::from(code)
}

impl Client {
    pub fn new(api: &Api, configured_listen: Option<String>) -> Result<Self, ExitCode> {
        let base = api
            .server
            .clone()
            .or_else(|| std::env::var("FERRY_SERVER").ok())
            .or(configured_listen.map(|l| format!("http://{l}")))
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = api.token.clone().ok_or_else(|| {
            fail(
                2,
                "no operator token: set FERRY_TOKEN (or --token) to your [operators.<name>] token",
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(1, format!("cannot start: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
            runtime,
        })
    }

    /// Call the API; the answer's JSON, or the exit code after printing its error.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ExitCode> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut req = self
                .http
                .request(method, &url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(30));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.map_err(|e| {
                fail(1, format!("cannot reach the Ferry API at {url}: {}; is the hook-receiver running (set --server or FERRY_SERVER)?", describe(&e)))
            })?;
            let status = res.status();
            let value: Value = res.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(value);
            }
            let why = value["error"].as_str().unwrap_or("no reason given").to_owned();
            Err(fail(if status.is_client_error() { 2 } else { 1 }, format!("{status}: {why}")))
        })
    }
}

impl Client {
    /// A GET whose failure is not worth a message (polling).
    fn get_quiet(&self, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let res = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .ok()?;
            if !res.status().is_success() {
                return None;
            }
            res.json().await.ok()
        })
    }
}

/// reqwest's Display hides the cause (refused, timed out) in the source chain.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

pub fn decide(
    c: &Client,
    run: &str,
    approve: bool,
    comment: Option<String>,
) -> Result<(), ExitCode> {
    let verb = if approve { "approve" } else { "reject" };
    let answer = c.call(
        reqwest::Method::POST,
        &format!("/api/runs/{run}/{verb}"),
        Some(json!({ "comment": comment })),
    )?;
    println!(
        "run {} {} for {} (revision {}) by {}",
        answer["run_id"].as_str().unwrap_or(run),
        answer["decision"].as_str().unwrap_or(verb),
        answer["environment"].as_str().unwrap_or("?"),
        answer["revision"].as_str().unwrap_or("?"),
        answer["by"].as_str().unwrap_or("?"),
    );
    Ok(())
}

pub struct Start<'a> {
    pub project: &'a str,
    pub wait: bool,
    pub timeout: Duration,
}

/// Where a rollback goes, and whether a rebuild may skip the test gate (and why).
pub struct RollbackTarget<'a> {
    pub environment: &'a str,
    pub to: Option<String>,
    pub skip_gate: bool,
    pub reason: Option<String>,
}

pub fn rollback(c: &Client, s: &Start<'_>, t: RollbackTarget<'_>) -> Result<(), ExitCode> {
    let env = t.environment;
    let mut body = json!({ "environment": env, "to": t.to });
    if t.skip_gate {
        body["skip_gate"] = true.into();
        body["reason"] = t.reason.into();
    }
    let answer = c.call(
        reqwest::Method::POST,
        &format!("/api/projects/{}/rollback", s.project),
        Some(body),
    )?;
    let run = answer["run_id"].as_str().unwrap_or_default().to_owned();
    if answer["rebuild"].as_bool() == Some(true) {
        println!("{}", answer["note"].as_str().unwrap_or("rebuilding"));
    }
    println!(
        "rollback of {} in {env} to {} requested: run {run}",
        s.project,
        answer["to"].as_str().unwrap_or("the previous revision")
    );
    if s.wait {
        return wait(c, &run, s.timeout, |status| {
            status == format!("deploy.rolled_back.{env}")
        });
    }
    Ok(())
}

pub fn deploy(
    c: &Client,
    s: &Start<'_>,
    revision: &str,
    message: Option<String>,
) -> Result<(), ExitCode> {
    let answer = c.call(
        reqwest::Method::POST,
        &format!("/api/projects/{}/deploy", s.project),
        Some(json!({ "revision": revision, "message": message })),
    )?;
    let run = answer["run_id"].as_str().unwrap_or_default().to_owned();
    println!("run {run} started: revision {revision} of {}", s.project);
    if s.wait {
        return wait(c, &run, s.timeout, |status| {
            status.starts_with("test.passed.")
        });
    }
    Ok(())
}

pub fn scale(c: &Client, s: &Start<'_>, environment: &str, to: u32) -> Result<(), ExitCode> {
    let answer = c.call(
        reqwest::Method::POST,
        &format!("/api/projects/{}/scale", s.project),
        Some(json!({ "environment": environment, "to": to })),
    )?;
    let run = answer["run_id"].as_str().unwrap_or_default().to_owned();
    println!(
        "scale of {} in {environment} to {to} requested: run {run}",
        s.project
    );
    if s.wait {
        return wait(c, &run, s.timeout, |status| {
            status == format!("scale.succeeded.{environment}")
        });
    }
    Ok(())
}

pub fn watch(c: &Client, run: &str, timeout: Duration) -> Result<(), ExitCode> {
    wait(c, run, timeout, |status| {
        status.starts_with("test.passed.") || status.starts_with("deploy.rolled_back.")
    })
}

/// Follow a run until it ends, printing its events as they come.
fn wait(
    c: &Client,
    run: &str,
    timeout: Duration,
    success: impl Fn(&str) -> bool,
) -> Result<(), ExitCode> {
    let deadline = Instant::now() + timeout;
    let mut printed = 0;
    loop {
        // The history may lag the request by a moment: a 404 right after is normal.
        if let Some(r) = c.get_quiet(&format!("/api/runs/{run}")) {
            let events = r["events"].as_array().cloned().unwrap_or_default();
            for e in events.iter().skip(printed) {
                println!("  {}", line(e));
            }
            printed = events.len();
            let status = r["status"].as_str().unwrap_or("running");
            if status == "waiting for approval" {
                println!("waiting for approval: ferry approve {run}  (or ferry reject {run})");
                return Ok(());
            }
            if status != "running" {
                println!("stages: {}", stages(&r).join(", "));
                return if success(status) {
                    println!("done: {status}");
                    Ok(())
                } else {
                    Err(fail(1, format!("run {run} ended with {status}")))
                };
            }
        }
        if Instant::now() >= deadline {
            return Err(fail(
                1,
                format!(
                    "run {run} did not end within {} s; follow it with `ferry runs`",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn line(e: &Value) -> String {
    let mut s = format!(
        "{} {}",
        e["time"]
            .as_str()
            .map(|t| t.get(11..23).unwrap_or(t))
            .unwrap_or(""),
        e["kind"].as_str().unwrap_or("?"),
    );
    if let Some(env) = e["environment"].as_str() {
        s.push_str(&format!(" [{env}]"));
    }
    if let Some(d) = e["detail"].as_str() {
        s.push_str(&format!(": {d}"));
    }
    s
}

pub fn runs(c: &Client, project: &str, limit: usize, output: &str) -> Result<(), ExitCode> {
    let answer = c.call(
        reqwest::Method::GET,
        &format!("/api/projects/{project}/runs?limit={limit}"),
        None,
    )?;
    if output == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(());
    }
    let runs = answer["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        println!("no runs of {project} in the history");
        return Ok(());
    }
    for r in &runs {
        println!(
            "{}  r{}  {}  {}  {}",
            r["run_id"].as_str().unwrap_or("?"),
            r["revision"].as_str().unwrap_or("?"),
            r["started"]
                .as_str()
                .map(|t| t.get(..19).unwrap_or(t))
                .unwrap_or("?"),
            r["author"].as_str().unwrap_or("-"),
            r["status"].as_str().unwrap_or("?"),
        );
        println!("    {}", stages(r).join(", "));
        if let Some(failure) = r["events"]
            .as_array()
            .and_then(|es| {
                es.iter()
                    .rev()
                    .find(|e| e["kind"].as_str().is_some_and(|k| k.ends_with(".failed")))
            })
            .and_then(|e| e["detail"].as_str())
        {
            println!("    cause: {failure}");
        }
    }
    Ok(())
}

/// Each stage's outcome and time: from the event that caused it to the outcome.
fn stages(run: &Value) -> Vec<String> {
    let events = run["events"].as_array().cloned().unwrap_or_default();
    let time = |e: &Value| {
        e["time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let mut out = Vec::new();
    for e in &events {
        let kind = e["kind"].as_str().unwrap_or_default();
        let name = match kind {
            "image.built" | "build.failed" => "build",
            "image.pushed" | "push.failed" => "push",
            "image.pulled" | "pull.failed" => "pull",
            "deploy.succeeded" | "deploy.failed" | "deploy.rolled_back" | "deploy.superseded" => {
                "deploy"
            }
            "test.passed" | "test.failed" => "test",
            "approval.granted" | "approval.rejected" | "approval.expired" => "approval",
            _ => continue,
        };
        let cause = events
            .iter()
            .find(|c| c["event_id"] == e["causation_id"])
            .and_then(time);
        let secs = match (cause, time(e)) {
            (Some(a), Some(b)) => format!(" {:.1}s", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => String::new(),
        };
        let outcome = kind.rsplit('.').next().unwrap_or_default();
        let env = e["environment"]
            .as_str()
            .map(|e| format!(" {e}"))
            .unwrap_or_default();
        out.push(format!("{name}{env} {outcome}{secs}"));
    }
    out
}

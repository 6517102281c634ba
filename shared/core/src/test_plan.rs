//! A project's test plan (`[projects.<name>.tests]`): what the tester checks in an
//! environment after a deploy, before the run may go on to the next one.

use crate::config::MaybeSecret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPlan {
    /// Environments tested after a deploy. Default: every environment of the project
    /// (in the last one the checks are the production health check: a failure there
    /// rolls production back).
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// The first check is retried until it passes or this many seconds pass: the
    /// service may still be warming up behind its load balancer.
    #[serde(default = "default_wait")]
    pub wait_until_healthy_secs: u64,
    #[serde(default)]
    pub checks: Vec<HttpCheck>,
    #[serde(default)]
    pub container: Option<TestContainer>,
}

fn default_wait() -> u64 {
    30
}

impl TestPlan {
    /// Whether `env` (of a project whose environments are `all`) is tested.
    pub fn covers(&self, env: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == env))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Shown in reports; default: `<METHOD> <url>`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    /// Relative to the environment's `base_url` (e.g. `/healthz`), or absolute.
    pub url: String,
    /// `Name = "value"`, or `Name = { secret = "value" }` for a value never shown
    /// (an API token): scrubbed from the report.
    #[serde(default)]
    pub headers: BTreeMap<String, MaybeSecret>,
    #[serde(default)]
    pub body: Option<String>,
    /// Expected status. Default: any 2xx.
    #[serde(default)]
    pub status: Option<u16>,
    /// Every string must appear in the response body.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// The response body must match this regular expression.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// JSON pointer (RFC 6901, e.g. `/status`) → expected value.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default = "default_check_timeout")]
    pub timeout_secs: u64,
    /// Follow redirects, only to the same scheme, host and port (default: no; a
    /// redirect is reported as the 3xx and its `Location`).
    #[serde(default)]
    pub follow_redirects: bool,
    /// Only in these environments (default: every environment the plan covers).
    #[serde(default)]
    pub environments: Option<Vec<String>>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_check_timeout() -> u64 {
    10
}

impl HttpCheck {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.url))
    }

    pub fn runs_in(&self, env: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == env))
    }
}

/// A container run after the HTTP checks; exit code 0 passes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestContainer {
    /// `same` (the image just deployed) or an image reference (a separate test image).
    #[serde(default = "default_same")]
    pub image: String,
    /// Overrides the image's CMD. It gets `FERRY_TARGET_URL`, `FERRY_REVISION`,
    /// `FERRY_ENVIRONMENT` and `FERRY_RUN_ID` in its environment.
    #[serde(default)]
    pub command: Vec<String>,
    /// `KEY = "value"`, or `KEY = { secret = "value" }` for a value never shown.
    #[serde(default)]
    pub env: BTreeMap<String, MaybeSecret>,
    /// A name from `[docker_hosts]`. Default: the environment's first host, else the
    /// build host.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_container_timeout")]
    pub timeout_secs: u64,
    /// Output kept in the report (the end of it, where failures are).
    #[serde(default = "default_output")]
    pub max_output_bytes: usize,
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// `default` (isolated from the host's loopback), `none`, `host` (opt-in) or a
    /// named engine network.
    #[serde(default)]
    pub network: crate::config::ContainerNetwork,
}

fn default_same() -> String {
    "same".into()
}

fn default_container_timeout() -> u64 {
    300
}

fn default_output() -> usize {
    16 * 1024
}

impl TestContainer {
    pub fn runs_in(&self, env: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == env))
    }
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Problems with a plan, as `(key suffix, message)`, checked at start-up.
pub fn problems(
    plan: &TestPlan,
    project_envs: &[String],
    env_has_base_url: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let tested: Vec<&String> = project_envs.iter().filter(|e| plan.covers(e)).collect();
    for list in [plan.environments.as_ref()]
        .into_iter()
        .chain(plan.checks.iter().map(|c| c.environments.as_ref()))
        .chain(plan.container.iter().map(|c| c.environments.as_ref()))
        .flatten()
    {
        for e in list {
            if !project_envs.contains(e) {
                p.push((
                    "environments".into(),
                    format!("`{e}` is not one of the project's environments"),
                ));
            }
        }
    }
    for (i, c) in plan.checks.iter().enumerate() {
        let key = format!("checks[{i}]");
        if !METHODS.contains(&c.method.as_str()) {
            p.push((
                format!("{key}.method"),
                format!("`{}` is not one of {METHODS:?}", c.method),
            ));
        }
        let absolute = c.url.starts_with("http://") || c.url.starts_with("https://");
        if !absolute && !c.url.starts_with('/') {
            p.push((
                format!("{key}.url"),
                format!(
                    "`{}` must be absolute (http/https) or start with `/`",
                    c.url
                ),
            ));
        }
        if !absolute {
            for e in tested.iter().filter(|e| c.runs_in(e)) {
                if !env_has_base_url(e) {
                    p.push((
                        format!("{key}.url"),
                        format!("is relative but environments.{e}.base_url is not set"),
                    ));
                }
            }
        }
        if let Some(s) = c.status
            && !(100..=599).contains(&s)
        {
            p.push((
                format!("{key}.status"),
                format!("{s} is not an HTTP status"),
            ));
        }
        if let Some(re) = &c.body_regex
            && let Err(e) = regex::Regex::new(re)
        {
            p.push((
                format!("{key}.body_regex"),
                format!("not a regular expression: {e}"),
            ));
        }
        for pointer in c.json.keys() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                p.push((
                    format!("{key}.json"),
                    format!("`{pointer}` is not a JSON pointer (they start with `/`)"),
                ));
            }
        }
        if c.timeout_secs == 0 {
            p.push((format!("{key}.timeout_secs"), "must be above 0".into()));
        }
    }
    if let Some(c) = &plan.container
        && c.image != "same"
        && c.image.trim().is_empty()
    {
        p.push(("container.image".into(), "must not be empty".into()));
    }
    p
}

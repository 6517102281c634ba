//! `[environments.<name>.canary]`: a deploy into the environment first sends a share of
//! the traffic to the new release, step by step, and goes on only while the proxy's
//! counters for it (and, if set, a Prometheus query) stay within bounds. Canaries run
//! on Docker hosts behind the proxy: every project deployed there needs a stable port.

use super::problem::{Problem, Report};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One step: this share of new requests goes to the new release for `hold`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryStep {
    /// 1–99 (100 % is the step after the last).
    pub percent: u8,
    /// How long the step is watched before the next one.
    pub hold: Duration,
    /// After its watch, the canary waits at this step for `ferry approve`.
    pub approve: bool,
}

/// An optional Prometheus query judged at the end of every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCheck {
    /// Prometheus' base URL (`http://prometheus:9090`).
    pub url: String,
    /// PromQL returning one number; `{project}`, `{environment}`, `{revision}` and
    /// `{servers}` (a regular expression of the new release's proxy servers) are filled in.
    pub query: String,
    /// The step fails when the query returns more than this.
    pub max: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryConfig {
    pub steps: Vec<CanaryStep>,
    /// The most failed responses the new release may give, in percent of its
    /// responses (5xx, responses cut, connections refused, requests retried away).
    pub max_error_percent: f64,
    /// The most its average time to the response headers may be, if set.
    pub max_response_ms: Option<u64>,
    /// Fewer responses than this in a step are not judged by rate or time (the step
    /// passes on the proxy's health checks alone; the reason says so).
    pub min_requests: u64,
    pub prometheus: Option<PrometheusCheck>,
}

/// A step as written: `{ percent = 5, secs = 60 }`, `approve = true` to wait there.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    percent: u32,
    secs: u64,
    #[serde(default)]
    approve: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CanaryFile {
    steps: Vec<StepFile>,
    #[serde(default = "default_max_error_percent")]
    max_error_percent: f64,
    #[serde(default)]
    max_response_ms: Option<u64>,
    #[serde(default = "default_min_requests")]
    min_requests: u64,
    #[serde(default)]
    prometheus: Option<PrometheusCheck>,
}

fn default_max_error_percent() -> f64 {
    1.0
}

fn default_min_requests() -> u64 {
    20
}

impl CanaryFile {
    pub(super) fn parse(self, at: &str, out: &mut Vec<Problem>) -> CanaryConfig {
        if self.steps.is_empty() {
            out.bad(
                format!("{at}.steps"),
                "needs at least one step, e.g. [{ percent = 5, secs = 60 }]",
            );
        }
        let mut last = 0;
        let mut steps = Vec::new();
        for (i, s) in self.steps.into_iter().enumerate() {
            let key = format!("{at}.steps[{i}]");
            if !(1..=99).contains(&s.percent) || s.percent <= last {
                out.bad(
                    format!("{key}.percent"),
                    "must be 1–99 and above the step before (100 % follows the last step)",
                );
            }
            if s.secs == 0 && !s.approve {
                out.bad(
                    format!("{key}.secs"),
                    "must be above 0: the step is watched that long",
                );
            }
            last = s.percent;
            steps.push(CanaryStep {
                percent: s.percent.min(99) as u8,
                hold: Duration::from_secs(s.secs),
                approve: s.approve,
            });
        }
        if !(0.0..=100.0).contains(&self.max_error_percent) {
            out.bad(format!("{at}.max_error_percent"), "must be 0–100");
        }
        if self.max_response_ms == Some(0) {
            out.bad(
                format!("{at}.max_response_ms"),
                "must be above 0 (or unset)",
            );
        }
        if let Some(p) = &self.prometheus {
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                out.bad(format!("{at}.prometheus.url"), "must be an http(s) URL");
            }
            if p.query.trim().is_empty() {
                out.bad(format!("{at}.prometheus.query"), "must be a PromQL query");
            }
            if !p.max.is_finite() {
                out.bad(format!("{at}.prometheus.max"), "must be a number");
            }
        }
        CanaryConfig {
            steps,
            max_error_percent: self.max_error_percent,
            max_response_ms: self.max_response_ms,
            min_requests: self.min_requests,
            prometheus: self.prometheus,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, FerryConfig, Problem};

    const BASE: &str = r#"
        [docker_hosts.h1]
        url = "unix:///var/run/docker.sock"
        [environments.production]
        hosts = ["h1"]
        [projects.shop]
        image = "shop/web"
        environments = ["production"]
        source = { kind = "svn", url = "svn://x/shop" }
        [projects.shop.container]
        ports = [9001, 9002]
        proxy_ports = { production = 8080 }
        [environments.production.canary]
    "#;

    fn load(canary: &str) -> Result<FerryConfig, Vec<Problem>> {
        match FerryConfig::from_toml_with_env(
            &format!("{BASE}{canary}"),
            std::path::Path::new("t.toml"),
        ) {
            Ok(c) => Ok(c),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn steps_rise_and_each_is_watched() {
        let cfg = load(
            "steps = [{ percent = 5, secs = 60 }, { percent = 25, secs = 30, approve = true }]",
        )
        .unwrap();
        let c = cfg.environments["production"].canary.as_ref().unwrap();
        assert_eq!(c.steps[1].percent, 25);
        assert!(c.steps[1].approve);
        assert_eq!((c.max_error_percent, c.min_requests), (1.0, 20));

        let problems = load(
            "steps = [{ percent = 25, secs = 60 }, { percent = 5, secs = 0 }, { percent = 100, secs = 1 }]\nmax_error_percent = 150.0",
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "environments.production.canary.max_error_percent",
                "environments.production.canary.steps[1].percent",
                "environments.production.canary.steps[1].secs",
                "environments.production.canary.steps[2].percent",
            ]
        );
    }

    #[test]
    fn every_project_of_a_canary_environment_needs_a_stable_port() {
        let text = BASE.replace("proxy_ports = { production = 8080 }", "");
        let problems = match FerryConfig::from_toml_with_env(
            &format!("{text}steps = [{{ percent = 5, secs = 60 }}]"),
            std::path::Path::new("t.toml"),
        ) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert!(
            problems
                .iter()
                .any(|p| p.key == "projects.shop.container.proxy_ports"
                    && p.message.contains("canaries")),
            "{problems:?}"
        );
    }
}

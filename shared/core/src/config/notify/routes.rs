//! `[[notify.routes]]`: which events go to which channels.

use super::Known;
use crate::config::problem::{Problem, Report};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Project names; empty means every project.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Environments; empty means any, including events without one (build, push).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Event kinds or patterns: `failed` (every `<stage>.failed` but `notify.failed`),
    /// `deploy.succeeded`, `approval.*`, `*.failed`, `*` (everything but
    /// `notify.failed`, which only an exact `notify.failed` selects).
    pub on: Vec<String>,
    pub channels: Vec<String>,
    /// Mention (chat) or mail (email) the commit's author too.
    #[serde(default = "yes")]
    pub mention_author: bool,
}

fn yes() -> bool {
    true
}

/// Whether an event kind matches a route's pattern (see [`RouteConfig::on`]).
pub fn kind_matches(pattern: &str, kind: &str) -> bool {
    if kind == "notify.failed" {
        return pattern == kind;
    }
    match pattern {
        "*" => true,
        "failed" => kind.ends_with(".failed"),
        _ => {
            let (mut pat, mut k) = (pattern.split('.'), kind.split('.'));
            loop {
                match (pat.next(), k.next()) {
                    (None, None) => return true,
                    (Some(p), Some(s)) if p == "*" || p == s => {}
                    _ => return false,
                }
            }
        }
    }
}

impl RouteConfig {
    /// What is wrong with route `i`; `channels` are every channel's name (a channel
    /// that is itself wrong is reported there, not as missing here).
    pub(super) fn check(
        &self,
        i: usize,
        channels: &[&str],
        known: &Known<'_>,
        out: &mut Vec<Problem>,
    ) {
        let key = |field: &str| format!("notify.routes[{i}].{field}");
        if self.on.is_empty() {
            out.bad(key("on"), "name at least one event kind, e.g. `failed`");
        }
        for pattern in &self.on {
            if !known.kinds.iter().any(|k| kind_matches(pattern, k)) {
                out.bad(
                    key("on"),
                    format!(
                        "`{pattern}` matches no event kind; use `failed`, `*` or kinds such as {}",
                        known.kinds.join(", ")
                    ),
                );
            }
        }
        if self.channels.is_empty() {
            out.bad(key("channels"), "name at least one channel");
        }
        for ch in self
            .channels
            .iter()
            .filter(|c| !channels.contains(&c.as_str()))
        {
            out.bad(
                key("channels"),
                format!("channel `{ch}` is not defined under [notify.channels]"),
            );
        }
        for proj in self
            .projects
            .iter()
            .filter(|p| !known.projects.contains(&p.as_str()))
        {
            out.bad(
                key("projects"),
                format!("project `{proj}` is not defined in [projects]"),
            );
        }
        for env in self
            .environments
            .iter()
            .filter(|e| !known.environments.contains(&e.as_str()))
        {
            out.bad(
                key("environments"),
                format!("environment `{env}` is not defined in [environments]"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_patterns() {
        assert!(kind_matches("failed", "build.failed"));
        assert!(!kind_matches("failed", "notify.failed"));
        assert!(!kind_matches("*", "notify.failed"));
        assert!(kind_matches("notify.failed", "notify.failed"));
        assert!(kind_matches("approval.*", "approval.requested"));
        assert!(kind_matches("*.failed", "deploy.failed"));
        assert!(!kind_matches("deploy.*", "approval.requested"));
        assert!(kind_matches("*", "deploy.succeeded"));
    }
}

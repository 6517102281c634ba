//! `[pull]`: how the puller pre-pulls images onto the hosts of an environment.

use super::problem::{Problem, Report};
use super::word::{self, words};
use serde::{Deserialize, Serialize};

words! {
    /// When an environment counts as ready for a deploy.
    #[derive(Default)]
    pub enum PullPolicy ("a policy") {
        /// Every host has the image (default).
        #[default]
        All = "all",
        /// At least one host has it; the others are named in the event.
        Any = "any",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PullConfig {
    /// Hosts pulled at the same time (per image).
    pub concurrency: usize,
    /// Attempts per host within one run of the handler, before the host counts as failed.
    pub attempts_per_host: u32,
    /// Deadline of one host's pull in one run of the handler, all attempts included
    /// (below the puller's handler timeout, so the handler always answers).
    pub timeout_secs: u64,
    pub policy: PullPolicy,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            attempts_per_host: 3,
            timeout_secs: 600,
            policy: PullPolicy::default(),
        }
    }
}

impl PullConfig {
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.concurrency == 0 || self.attempts_per_host == 0 {
            out.bad(
                "pull",
                "concurrency and attempts_per_host must be at least 1",
            );
        }
    }
}

/// `[pull]` as written: `policy` is `all` or `any`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PullFile {
    concurrency: usize,
    attempts_per_host: u32,
    timeout_secs: u64,
    policy: String,
}

impl Default for PullFile {
    fn default() -> Self {
        let typed = PullConfig::default();
        Self {
            concurrency: typed.concurrency,
            attempts_per_host: typed.attempts_per_host,
            timeout_secs: typed.timeout_secs,
            policy: typed.policy.to_string(),
        }
    }
}

impl PullFile {
    pub(super) fn parse(self, out: &mut Vec<Problem>) -> PullConfig {
        PullConfig {
            concurrency: self.concurrency,
            attempts_per_host: self.attempts_per_host,
            timeout_secs: self.timeout_secs,
            policy: word::parse(&self.policy, "pull.policy", PullPolicy::All, out),
        }
    }
}

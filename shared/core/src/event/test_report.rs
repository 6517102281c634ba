//! Payloads of the tester: the report of a run's checks, and a failed test.

use super::StageFailed;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub revision: String,
    pub image: String,
    /// What the environment ran before this deploy: where a failure rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// The test container's output, size-capped, secrets scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub millis: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub millis: u64,
    /// For a failure: what was expected and what came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `test.failed`: the stage failure, plus the report when the checks themselves failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestFailure {
    #[serde(flatten)]
    pub failure: StageFailed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TestReport>,
}

//! Payloads of the approval gate: the request, and the answer to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub revision: String,
    /// The image (by digest) that passed, and that approval deploys.
    pub image: String,
    /// The environment whose tests it passed; none when the held environment is the
    /// project's first (nothing was tested before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_in: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Set when a canary waits at a step: the share of traffic (in percent) the new
    /// release takes while it waits; approval takes it on to the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_percent: Option<u8>,
}

/// A person's (or the expiry's) answer to an approval request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub revision: String,
    pub image: String,
    /// The operator's name, or `ferry` for an expiry.
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

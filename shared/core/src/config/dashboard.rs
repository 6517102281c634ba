//! `[dashboard]`: the web dashboard served at `/` of the operator API's address.

use super::Problem;
use super::problem::Report as _;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// How long a sign-in lasts unless set.
pub const DEFAULT_SESSION_HOURS: u32 = 12;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// The key that signs session cookies (at least 32 characters). Every replica
    /// behind one address needs the same one; unset, each process draws its own and a
    /// restart signs everyone out.
    pub session_secret: Option<Secret<String>>,
    /// How long a sign-in lasts, in hours (1–720).
    pub session_hours: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            session_secret: None,
            session_hours: DEFAULT_SESSION_HOURS,
        }
    }
}

impl DashboardConfig {
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if let Some(s) = &self.session_secret
            && s.expose().trim().chars().count() < 32
        {
            out.bad(
                "dashboard.session_secret",
                "is shorter than 32 characters: use e.g. the output of `openssl rand -hex 32`",
            );
        }
        if !(1..=720).contains(&self.session_hours) {
            out.bad(
                "dashboard.session_hours",
                format!(
                    "is {}: a sign-in lasts between 1 and 720 hours",
                    self.session_hours
                ),
            );
        }
    }
}

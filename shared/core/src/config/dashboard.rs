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
    /// Where people reach the dashboard (`https://ferry.example.com`): notifications link
    /// a run's page under it. Unset, they carry no link.
    pub url: Option<DashboardUrl>,
}

/// The dashboard's public address: `http(s)://host[:port][/path]`, without credentials,
/// query or fragment (a link is built by appending `/runs/<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DashboardUrl(String);

impl DashboardUrl {
    /// The page of a run.
    pub fn run(&self, run_id: impl std::fmt::Display) -> String {
        format!("{}/runs/{run_id}", self.0)
    }
}

impl TryFrom<String> for DashboardUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().trim_end_matches('/');
        let rest = t
            .strip_prefix("https://")
            .or_else(|| t.strip_prefix("http://"))
            .ok_or_else(|| format!("`{t}` is not an http:// or https:// URL"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty()
            || host.contains('@')
            || rest.contains(['?', '#'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "`{t}` is not a plain address: give scheme, host and optional path, without credentials, query or fragment"
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

impl From<DashboardUrl> for String {
    fn from(u: DashboardUrl) -> String {
        u.0
    }
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            session_secret: None,
            session_hours: DEFAULT_SESSION_HOURS,
            url: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dashboard_url_is_a_plain_http_address() {
        let u = DashboardUrl::try_from("https://ferry.example.com/ci/".to_owned()).unwrap();
        assert_eq!(u.run("r1"), "https://ferry.example.com/ci/runs/r1");
        for bad in [
            "ferry.example.com",
            "javascript:alert(1)",
            "https://user:pw@ferry.example.com",
            "https://ferry.example.com/?x=1",
            "https:///path",
        ] {
            assert!(DashboardUrl::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}

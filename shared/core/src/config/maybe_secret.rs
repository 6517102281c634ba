//! A configured value that may be marked secret: a container's environment variable or
//! a test check's header. `KEY = "plain"` is an ordinary value; `KEY = { secret = "..." }`
//! is a [`Secret`]: never printed, published or notified, and scrubbed (with its
//! encoded forms) from build logs, test reports and messages.

use super::FerryConfig;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaybeSecret {
    Plain(String),
    Secret { secret: Secret<String> },
}

impl MaybeSecret {
    /// The value, for the one party that needs it (the container, the checked server).
    pub fn expose(&self) -> &str {
        match self {
            MaybeSecret::Plain(v) => v,
            MaybeSecret::Secret { secret } => secret.expose(),
        }
    }

    pub fn secret(&self) -> Option<&str> {
        match self {
            MaybeSecret::Plain(_) => None,
            MaybeSecret::Secret { secret } => Some(secret.expose()),
        }
    }
}

impl From<&str> for MaybeSecret {
    fn from(value: &str) -> Self {
        MaybeSecret::Plain(value.to_owned())
    }
}

impl FerryConfig {
    /// The values marked `{ secret = "..." }` in projects' containers and test plans.
    pub(super) fn marked_secrets(&self) -> impl Iterator<Item = String> + '_ {
        self.projects.values().flat_map(|p| {
            let plan = p.tests.iter();
            let container = p.container.env.values();
            let tests = plan
                .clone()
                .flat_map(|t| t.container.iter())
                .flat_map(|c| c.env.values());
            let headers = plan
                .flat_map(|t| t.checks.iter())
                .flat_map(|c| c.headers.values());
            container
                .chain(tests)
                .chain(headers)
                .filter_map(|v| v.secret().map(str::to_owned))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_secret_is_a_secret_and_a_string_is_plain() {
        #[derive(Deserialize, Serialize)]
        struct Env {
            plain: MaybeSecret,
            hidden: MaybeSecret,
        }
        let env: Env = toml_like(r#"{"plain": "debug", "hidden": {"secret": "s3cr3t-v"}}"#);
        assert_eq!(env.plain, MaybeSecret::from("debug"));
        assert_eq!(env.hidden.expose(), "s3cr3t-v");
        assert_eq!(env.hidden.secret(), Some("s3cr3t-v"));
        let shown = serde_json::to_string(&env).unwrap();
        assert!(!shown.contains("s3cr3t-v"), "{shown}");
        assert!(!format!("{:?}", env.hidden).contains("s3cr3t-v"));
    }

    fn toml_like<T: for<'de> Deserialize<'de>>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }
}

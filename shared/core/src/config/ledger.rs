//! `[ledger]`: where the run ledger keeps every event (crate `ferry-ledger`). Unset: no
//! ledger, and the run history is what the broker's stream keeps (`broker.history_*`).

use super::problem::{Problem, Report};
use crate::secret::{Secret, redact_url};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// `sqlite:///var/lib/ferry/ledger.db` (a file, created if missing) or
    /// `postgres://user:password@host:5432/ferry`. A secret: it may hold a password.
    pub url: Option<Secret<String>>,
    /// Days a run's events are kept after its last one (`FERRY__LEDGER__KEEP_DAYS`);
    /// then they are pruned, all but the audit records, and the run's row stays. Unset:
    /// every event is kept.
    pub keep_days: Option<u32>,
}

/// The longest `ledger.keep_days`: a hundred years.
pub const MAX_KEEP_DAYS: u32 = 36_500;

/// Which database a ledger URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A ledger URL whose scheme is known; for SQLite, with `mode=rwc` so that the file is
/// created on first use.
#[derive(Clone)]
pub struct LedgerUrl {
    url: Secret<String>,
    backend: Backend,
}

impl std::fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl LedgerUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(format!(
                "`{}` is neither sqlite:///path/to/ledger.db nor postgres://user:password@host/database",
                redact_url(url)
            ));
        };
        let url = match backend {
            Backend::Sqlite if url.contains(":memory:") => {
                return Err("an in-memory SQLite ledger forgets everything: name a file".into());
            }
            Backend::Sqlite if !url.contains("mode=") => {
                let joint = if url.contains('?') { '&' } else { '?' };
                format!("{url}{joint}mode=rwc")
            }
            _ => url.to_owned(),
        };
        Ok(Self {
            url: Secret::new(url),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, to hand to the database driver only.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// For messages: the password replaced.
    pub fn redacted(&self) -> String {
        redact_url(self.url.expose())
    }

    /// The SQLite file's path (`sqlite:///a/b.db` → `/a/b.db`), `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self.url.expose().strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty()).then(|| path.into())
    }
}

impl LedgerConfig {
    /// The parsed URL (`None`: no ledger). Valid once start-up checks passed.
    pub fn url(&self) -> Option<LedgerUrl> {
        self.url
            .as_ref()
            .and_then(|u| LedgerUrl::parse(u.expose()).ok())
    }

    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if let Some(url) = &self.url
            && let Err(why) = LedgerUrl::parse(url.expose())
        {
            out.bad("ledger.url", why);
        }
        if let Some(days) = self.keep_days
            && !(1..=MAX_KEEP_DAYS).contains(&days)
        {
            out.bad(
                "ledger.keep_days",
                format!(
                    "is {days}: keep runs between 1 and {MAX_KEEP_DAYS} days, or leave it unset to keep every run"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_creates_its_file_and_names_its_path() {
        let u = LedgerUrl::parse("sqlite:///var/lib/ferry/ledger.db").unwrap();
        assert_eq!(u.backend(), Backend::Sqlite);
        assert_eq!(u.expose(), "sqlite:///var/lib/ferry/ledger.db?mode=rwc");
        assert_eq!(
            u.sqlite_path().unwrap(),
            std::path::Path::new("/var/lib/ferry/ledger.db")
        );
        let ro = LedgerUrl::parse("sqlite://ledger.db?mode=ro").unwrap();
        assert_eq!(ro.expose(), "sqlite://ledger.db?mode=ro");
    }

    #[test]
    fn other_urls_are_refused_without_showing_a_password() {
        let err = LedgerUrl::parse("mysql://ferry:hunter2@db/ferry").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(LedgerUrl::parse("sqlite::memory:").is_err());
        let pg = LedgerUrl::parse("postgres://ferry:hunter2@db:5432/ferry").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert!(!format!("{pg:?}").contains("hunter2"));
        assert!(pg.sqlite_path().is_none());
    }

    #[test]
    fn keep_days_is_unset_or_between_one_day_and_a_hundred_years() {
        let problems = |keep_days| {
            let mut out = Vec::new();
            LedgerConfig {
                url: None,
                keep_days,
            }
            .check(&mut out);
            out
        };
        for fine in [None, Some(1), Some(90), Some(MAX_KEEP_DAYS)] {
            assert_eq!(problems(fine), vec![], "{fine:?}");
        }
        for bad in [0, MAX_KEEP_DAYS + 1] {
            let found = problems(Some(bad));
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].key, "ledger.keep_days");
            assert!(found[0].message.contains("leave it unset"), "{}", found[0]);
        }
        let cfg = crate::config::FerryConfig::from_toml_with_env(
            "[ledger]\nkeep_days = 0\n",
            std::path::Path::new("test.toml"),
        );
        let err = match cfg {
            Ok(_) => panic!("keep_days = 0 was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("ledger.keep_days: is 0"), "{err}");
        let cfg = crate::config::FerryConfig::from_toml_with_env(
            "[ledger]\nkeep_days = 400\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        assert_eq!(cfg.ledger.keep_days, Some(400));
    }
}

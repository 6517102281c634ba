/// What went wrong with the ledger; every message says which database (password
/// redacted) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot create {dir} for the SQLite ledger: {source}; check ledger.url and the directory's rights"
    )]
    Directory {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open the ledger at {url}: {source}; check ledger.url and that the database is running and reachable"
    )]
    Open { url: String, source: sqlx::Error },
    #[error(
        "cannot bring the ledger at {url} up to date: {source}; the database user needs the right to create tables, and the ledger must not be newer than this Ferry"
    )]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "the ledger at {url} failed to {step}: {source}; nothing is lost, recording goes on when the database answers again"
    )]
    Query {
        url: String,
        step: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "an event in the ledger at {url} is not a Ferry event ({reason}); was the database written by something else?"
    )]
    Corrupt { url: String, reason: String },
}

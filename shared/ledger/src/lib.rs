//! The run ledger: every event of every run, recorded durably and once (by event id), in
//! an embedded SQLite file or a PostgreSQL database, with a row per run for lists and the
//! stream offset recording has reached. The bus stays the source: the ledger is written
//! from the run history stream, so a ledger that was down catches up from the stream and
//! deploys never wait for it.
//!
//! One set of queries and migrations serves both databases through sqlx's `Any` driver:
//! the SQL is the portable subset (`ON CONFLICT ... DO UPDATE` with `excluded`, which
//! SQLite has since 3.24), and every value is text or a 64-bit integer.

mod error;

pub use error::LedgerError;
pub use ferry_shared::config::{LedgerBackend as Backend, LedgerUrl};

use ferry_shared::event::Envelope;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// The name of the history stream's cursor in `ledger_cursors`.
pub const HISTORY_CURSOR: &str = "history";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Ledger {
    pool: AnyPool,
    url: LedgerUrl,
}

/// Whether recording an event added it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// Its id was recorded before (a redelivery, another replica, a replay): nothing changed.
    Repeat,
}

/// A run as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub run_id: String,
    pub project: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub revision: Option<String>,
    pub last_kind: String,
    pub events: i64,
}

impl Ledger {
    /// Connect (creating a SQLite file that does not exist yet) and bring the schema up to
    /// date: migrations run at start-up, each once, whichever replica gets there first.
    pub async fn open(url: &LedgerUrl) -> Result<Self, LedgerError> {
        install_default_drivers();
        if let Some(dir) = url
            .sqlite_path()
            .as_deref()
            .and_then(std::path::Path::parent)
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let backend = url.backend();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time anyway; readers share the WAL.
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers do not block the writer. NORMAL: a power loss may undo
                        // the last commits, cursor included, and they are recorded again.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url.expose())
            .await
            .map_err(|source| LedgerError::Open {
                url: url.redacted(),
                source,
            })?;
        migrate(&pool, url).await?;
        Ok(Self {
            pool,
            url: url.clone(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    fn query_error(&self, step: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError + '_ {
        move |source| LedgerError::Query {
            url: self.url.redacted(),
            step,
            source,
        }
    }

    /// Record `event` (seen at `offset` of the history stream, when read from there) and
    /// move the history cursor past it, in one transaction: after a crash either both are
    /// there or neither, and the event is read and recorded again.
    pub async fn record(
        &self,
        event: &Envelope,
        offset: Option<u64>,
    ) -> Result<Recorded, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(self.query_error("begin"))?;
        let time_ms = event.time.timestamp_millis();
        let envelope = String::from_utf8_lossy(&event.to_json()).into_owned();
        let inserted = sqlx::query(
            "INSERT INTO ledger_events \
             (event_id, run_id, project, kind, environment, time_ms, envelope, recorded_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.event_id.to_string())
        .bind(event.run_id.to_string())
        .bind(event.project.clone())
        .bind(event.kind())
        .bind(event.environment.clone())
        .bind(time_ms)
        .bind(envelope)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(self.query_error("record an event"))?
        .rows_affected();
        if inserted == 1 {
            // One statement, so two replicas recording two events of a run cannot lose one.
            sqlx::query(
                "INSERT INTO ledger_runs \
                 (run_id, project, first_ms, last_ms, revision, last_kind, events) \
                 VALUES ($1, $2, $3, $3, $4, $5, 1) \
                 ON CONFLICT (run_id) DO UPDATE SET \
                 first_ms = CASE WHEN excluded.first_ms < ledger_runs.first_ms \
                     THEN excluded.first_ms ELSE ledger_runs.first_ms END, \
                 last_ms = CASE WHEN excluded.last_ms > ledger_runs.last_ms \
                     THEN excluded.last_ms ELSE ledger_runs.last_ms END, \
                 last_kind = CASE WHEN excluded.last_ms >= ledger_runs.last_ms \
                     THEN excluded.last_kind ELSE ledger_runs.last_kind END, \
                 revision = COALESCE(ledger_runs.revision, excluded.revision), \
                 events = ledger_runs.events + 1",
            )
            .bind(event.run_id.to_string())
            .bind(event.project.clone())
            .bind(time_ms)
            .bind(event.event.revision().map(str::to_owned))
            .bind(event.routing_key())
            .execute(&mut *tx)
            .await
            .map_err(self.query_error("update the run"))?;
        }
        if let Some(offset) = offset {
            let next = i64::try_from(offset).unwrap_or(i64::MAX - 1) + 1;
            sqlx::query(
                "INSERT INTO ledger_cursors (name, next_offset) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET next_offset = CASE \
                 WHEN excluded.next_offset > ledger_cursors.next_offset \
                 THEN excluded.next_offset ELSE ledger_cursors.next_offset END",
            )
            .bind(HISTORY_CURSOR)
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(self.query_error("move the history cursor"))?;
        }
        tx.commit().await.map_err(self.query_error("commit"))?;
        Ok(if inserted == 1 {
            Recorded::New
        } else {
            Recorded::Repeat
        })
    }

    /// The history stream's offset to read from next (`None`: nothing recorded yet).
    pub async fn next_offset(&self) -> Result<Option<u64>, LedgerError> {
        let row = sqlx::query("SELECT next_offset FROM ledger_cursors WHERE name = $1")
            .bind(HISTORY_CURSOR)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error("read the history cursor"))?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()
            .map_err(self.query_error("read the history cursor"))?
            .map(|n| n.max(0) as u64))
    }

    /// Every event of the newest `runs` runs (by first event), oldest first: what a
    /// replica's in-memory index is rebuilt from at start-up.
    pub async fn recent_events(&self, runs: usize) -> Result<Vec<Envelope>, LedgerError> {
        let rows = sqlx::query(
            "SELECT e.envelope FROM ledger_events e JOIN \
             (SELECT run_id FROM ledger_runs ORDER BY first_ms DESC, run_id DESC LIMIT $1) r \
             ON e.run_id = r.run_id ORDER BY e.time_ms, e.event_id",
        )
        .bind(i64::try_from(runs).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("read the recent runs"))?;
        rows.iter().map(|r| self.envelope(r)).collect()
    }

    /// The events of one run, oldest first.
    pub async fn run_events(&self, run_id: &str) -> Result<Vec<Envelope>, LedgerError> {
        let rows = sqlx::query(
            "SELECT envelope FROM ledger_events WHERE run_id = $1 ORDER BY time_ms, event_id",
        )
        .bind(run_id.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("read a run"))?;
        rows.iter().map(|r| self.envelope(r)).collect()
    }

    /// The newest `limit` runs of `project`, newest first.
    pub async fn runs(&self, project: &str, limit: usize) -> Result<Vec<RunRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT run_id, project, first_ms, last_ms, revision, last_kind, events \
             FROM ledger_runs WHERE project = $1 ORDER BY first_ms DESC, run_id DESC LIMIT $2",
        )
        .bind(project.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("list runs"))?;
        rows.iter()
            .map(|r| {
                Ok(RunRow {
                    run_id: r.try_get(0)?,
                    project: r.try_get(1)?,
                    first_ms: r.try_get(2)?,
                    last_ms: r.try_get(3)?,
                    revision: r.try_get(4)?,
                    last_kind: r.try_get(5)?,
                    events: r.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.query_error("list runs"))
    }

    /// Whether the event with this id is recorded.
    pub async fn has_event(&self, event_id: uuid::Uuid) -> Result<bool, LedgerError> {
        let row = sqlx::query("SELECT 1 FROM ledger_events WHERE event_id = $1")
            .bind(event_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error("look up an event"))?;
        Ok(row.is_some())
    }

    /// How many events are recorded.
    pub async fn event_count(&self) -> Result<u64, LedgerError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM ledger_events")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(self.query_error("count events"))?;
        Ok(n.max(0) as u64)
    }

    fn envelope(&self, row: &sqlx::any::AnyRow) -> Result<Envelope, LedgerError> {
        let text: String = row.try_get(0).map_err(self.query_error("read an event"))?;
        Envelope::from_json(text.as_bytes()).map_err(|e| LedgerError::Corrupt {
            url: self.url.redacted(),
            reason: e.to_string(),
        })
    }

    /// Close the pool (its connections end cleanly).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Run the migrations not applied yet. PostgreSQL serialises two replicas migrating at
/// once (sqlx takes an advisory lock); SQLite has no such lock, so the second to reach a
/// migration fails on what the first created: it looks again, and by then finds it applied.
async fn migrate(pool: &AnyPool, url: &LedgerUrl) -> Result<(), LedgerError> {
    let mut attempt = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(source) if attempt < 5 && url.backend() == Backend::Sqlite => {
                attempt += 1;
                tracing::debug!("migrating the ledger again after: {source}");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(source) => {
                return Err(LedgerError::Migrate {
                    url: url.redacted(),
                    source,
                });
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

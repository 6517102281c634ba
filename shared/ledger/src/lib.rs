//! The run ledger: every event of every run, recorded durably and once (by event id), in
//! an embedded SQLite file or a PostgreSQL database, with a row per run for lists and the
//! stream offset recording has reached. The bus stays the source: the ledger is written
//! from the run history stream, so a ledger that was down catches up from the stream and
//! deploys never wait for it.
//!
//! One set of queries and migrations serves both databases through sqlx's `Any` driver:
//! the SQL is the portable subset (`ON CONFLICT ... DO UPDATE` with `excluded`, which
//! SQLite has since 3.24), and every value is text or a 64-bit integer.
//!
//! Retention is the operator's choice (`ledger.keep_days`, unset: everything is kept):
//! [`Ledger::prune`] deletes the events of runs whose last event is older than a cutoff,
//! all but the audit records ([`AUDIT_KINDS`]), and keeps each run's row, marked pruned.

mod error;

pub use error::LedgerError;
pub use ferry_shared::config::{LedgerBackend as Backend, LedgerUrl};

use chrono::{DateTime, Utc};
use ferry_shared::event::Envelope;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// The name of the history stream's cursor in `ledger_cursors`.
pub const HISTORY_CURSOR: &str = "history";

/// The events a prune keeps: who approved or rejected what (with their comment), which
/// approvals expired, the deploys, rollbacks and scalings operators asked for, and which
/// commit started the run (small, and what recognises a redelivered webhook), and what
/// the delivery figures need: deployments and failed tests.
pub const AUDIT_KINDS: &[&str] = &[
    "approval.granted",
    "approval.rejected",
    "approval.expired",
    "deploy.requested",
    "deploy.rolled_back",
    // What the delivery figures are computed from (deployments, failed tests).
    "deploy.succeeded",
    "test.failed",
    "scale.requested",
    "scale.succeeded",
    "source.changed",
];

/// Runs pruned per transaction: a first prune of years of runs holds the write lock for
/// one batch at a time, and recording goes on between batches.
pub const PRUNE_BATCH: usize = 500;

/// The PostgreSQL advisory lock (transaction-scoped) that replicas pruning at once take
/// turns on, batch by batch (any 64-bit number no other user of the database takes).
const PRUNE_LOCK: i64 = 0x6665_7272_7970_7275; // "ferrypru"

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

/// One event as the delivery figures read it ([`Ledger::each_fact_since`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactRow {
    pub event_id: uuid::Uuid,
    pub run_id: uuid::Uuid,
    pub project: String,
    pub kind: String,
    pub environment: Option<String>,
    pub time: DateTime<Utc>,
    /// A `source.changed`'s commit time, where its sender gave one.
    pub committed: Option<DateTime<Utc>>,
}

/// Event kinds for an `IN (...)`: Ferry's own names (never input), listed in the
/// statement so one statement serves both databases; anything else is left out.
fn kind_list(kinds: &[&str]) -> String {
    kinds
        .iter()
        .filter(|k| {
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        })
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The columns [`Ledger::fact_row`] reads: an event's, and of a commit its envelope (for
/// its time alone).
const FACT_COLUMNS: &str = "event_id, run_id, project, kind, environment, time_ms, \
     CASE WHEN kind = 'source.changed' THEN envelope END";

/// `last_facts`'s query: walks `ledger_events_by_place` back from the environment's newest
/// event and stops at the limit (tested against SQLite's plan below).
fn last_facts_sql(kind_list: &str) -> String {
    format!(
        "SELECT {FACT_COLUMNS} \
         FROM ledger_events WHERE project = $1 AND environment = $2 AND kind IN ({kind_list}) \
         AND time_ms < $4 ORDER BY time_ms DESC, event_id DESC LIMIT $3"
    )
}

/// The commit time in a `source.changed` envelope's JSON, read without the rest.
fn committed_at(envelope: &str) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Source {
        payload: Payload,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        committed: Option<DateTime<Utc>>,
    }
    serde_json::from_str::<Source>(envelope)
        .ok()?
        .payload
        .committed
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
    /// Every event recorded for the run, those a prune deleted included.
    pub events: i64,
    /// Its events were pruned (`ledger.keep_days`): what is left are its audit records,
    /// and any event recorded after the prune.
    pub pruned: bool,
}

/// What [`Ledger::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs whose events were pruned (their rows stay).
    pub runs: u64,
    /// Events deleted.
    pub events: u64,
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
    ///
    /// An event of a run already pruned (a late redelivery of an event the prune deleted,
    /// or one that comes days later, like an approval) is recorded like any other: it is
    /// new, counts in the run's `events` again, and moves `last_ms` if it is later. The
    /// run stays marked pruned and becomes prunable again, so the next prune after
    /// `last_ms` is older than the cutoff deletes it too unless it is an audit record.
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
                 events = ledger_runs.events + 1, \
                 prunable = 1",
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
    /// replica's in-memory index is rebuilt from at start-up (of a pruned run, what is
    /// left).
    pub async fn recent_events(&self, runs: usize) -> Result<Vec<Envelope>, LedgerError> {
        let mut events = Vec::new();
        self.each_recent_event(runs, |e| events.push(e)).await?;
        Ok(events)
    }

    /// [`Ledger::recent_events`], handed to `each` one at a time as rows arrive: ten
    /// thousand runs are a hundred thousand envelopes, which held all at once (rows, then
    /// decoded) cost a start-up hundreds of MB the allocator keeps afterwards.
    pub async fn each_recent_event(
        &self,
        runs: usize,
        mut each: impl FnMut(Envelope),
    ) -> Result<usize, LedgerError> {
        use futures_util::TryStreamExt as _;
        let mut rows = sqlx::query(
            "SELECT e.envelope FROM ledger_events e JOIN \
             (SELECT run_id FROM ledger_runs ORDER BY first_ms DESC, run_id DESC LIMIT $1) r \
             ON e.run_id = r.run_id ORDER BY e.time_ms, e.event_id",
        )
        .bind(i64::try_from(runs).unwrap_or(i64::MAX))
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(self.query_error("read the recent runs"))?
        {
            each(self.envelope(&row)?);
            n += 1;
        }
        Ok(n)
    }

    /// What the delivery figures need of each event of `kinds` since `since`, oldest
    /// first, handed to `each` as rows arrive: the columns, not the envelopes (a year of
    /// deployments is tens of thousands of events, with their test reports), and of a
    /// commit only its time.
    pub async fn each_fact_since(
        &self,
        kinds: &[&str],
        since: DateTime<Utc>,
        mut each: impl FnMut(FactRow),
    ) -> Result<usize, LedgerError> {
        use futures_util::TryStreamExt as _;
        let list = kind_list(kinds);
        if list.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT {FACT_COLUMNS} \
             FROM ledger_events WHERE time_ms >= $1 AND kind IN ({list}) \
             ORDER BY time_ms, event_id"
        );
        let mut rows = sqlx::query(&sql)
            .bind(since.timestamp_millis())
            .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(self.query_error("read the delivery events"))?
        {
            each(self.fact_row(&row)?);
            n += 1;
        }
        Ok(n)
    }

    /// The newest `limit` events of `kinds` in one project's environment before `before`
    /// (none: now), newest first: where a deployment stands without reading the whole
    /// history.
    pub async fn last_facts(
        &self,
        (project, environment): (&str, &str),
        kinds: &[&str],
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<FactRow>, LedgerError> {
        let list = kind_list(kinds);
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let sql = last_facts_sql(&list);
        let rows = sqlx::query(&sql)
            .bind(project.to_owned())
            .bind(environment.to_owned())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(before.map_or(i64::MAX, |t| t.timestamp_millis()))
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("read the last deployments"))?;
        rows.iter().map(|r| self.fact_row(r)).collect()
    }

    fn fact_row(&self, row: &sqlx::any::AnyRow) -> Result<FactRow, LedgerError> {
        let what = "read the delivery events";
        let text = |i| row.try_get::<String, _>(i).map_err(self.query_error(what));
        let id = |i| {
            text(i)?
                .parse::<uuid::Uuid>()
                .map_err(|e| LedgerError::Corrupt {
                    url: self.url.redacted(),
                    reason: format!("an id that is no UUID ({e})"),
                })
        };
        let envelope: Option<String> = row.try_get(6).map_err(self.query_error(what))?;
        Ok(FactRow {
            event_id: id(0)?,
            run_id: id(1)?,
            project: text(2)?,
            kind: text(3)?,
            environment: row.try_get(4).map_err(self.query_error(what))?,
            time: DateTime::from_timestamp_millis(row.try_get(5).map_err(self.query_error(what))?)
                .unwrap_or_default(),
            committed: envelope.as_deref().and_then(committed_at),
        })
    }

    /// The events of one run, oldest first (of a pruned run, what is left).
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
            "SELECT run_id, project, first_ms, last_ms, revision, last_kind, events, pruned_ms \
             FROM ledger_runs WHERE project = $1 ORDER BY first_ms DESC, run_id DESC LIMIT $2",
        )
        .bind(project.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("list runs"))?;
        rows.iter()
            .map(|r| self.run_row(r))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.query_error("list runs"))
    }

    /// Runs of `projects` that began before (`before_ms`, `before_run`) in list order,
    /// newest first, at most `limit`: the lists' pages beyond what a replica holds in
    /// memory. The run id breaks ties between runs that began in the same millisecond.
    pub async fn runs_before(
        &self,
        projects: &[String],
        (before_ms, before_run): (i64, &str),
        limit: usize,
    ) -> Result<Vec<RunRow>, LedgerError> {
        if projects.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..projects.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT run_id, project, first_ms, last_ms, revision, last_kind, events, pruned_ms \
             FROM ledger_runs WHERE (first_ms < $1 OR (first_ms = $1 AND run_id < $2)) \
             AND project IN ({}) ORDER BY first_ms DESC, run_id DESC LIMIT $3",
            marks.join(",")
        );
        let mut q = sqlx::query(&sql)
            .bind(before_ms)
            .bind(before_run.to_owned())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        for p in projects {
            q = q.bind(p.clone());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("list older runs"))?;
        rows.iter()
            .map(|r| self.run_row(r))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.query_error("list older runs"))
    }

    fn run_row(&self, r: &sqlx::any::AnyRow) -> Result<RunRow, sqlx::Error> {
        Ok(RunRow {
            run_id: r.try_get(0)?,
            project: r.try_get(1)?,
            first_ms: r.try_get(2)?,
            last_ms: r.try_get(3)?,
            revision: r.try_get(4)?,
            last_kind: r.try_get(5)?,
            events: r.try_get(6)?,
            pruned: r.try_get::<Option<i64>, _>(7)?.is_some(),
        })
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

    /// Delete the events of the runs whose last event is older than `older_than` and that
    /// hold events no prune went through, all but their audit records ([`AUDIT_KINDS`]),
    /// and mark their rows pruned (the rows and their summaries stay, so lists and counts
    /// still know the runs). In transactions of [`PRUNE_BATCH`] runs, oldest first, until
    /// none is left: an error stops it with the batches before it done, and the next prune
    /// goes on from there.
    ///
    /// Replicas may prune at once: each batch claims its runs in the statement that marks
    /// them (a run is pruned by one of them), and on PostgreSQL the batches take turns
    /// on an advisory lock, so that two of them never wait on each other's rows.
    pub async fn prune(&self, older_than: DateTime<Utc>) -> Result<Pruned, LedgerError> {
        let cutoff = older_than.timestamp_millis();
        let mut total = Pruned::default();
        loop {
            let batch = self.prune_batch(cutoff).await?;
            total.runs += batch.runs;
            total.events += batch.events;
            if batch.runs < PRUNE_BATCH as u64 {
                return Ok(total);
            }
            // Between batches, recording (waiting for the write lock) goes first.
            tokio::task::yield_now().await;
        }
    }

    async fn prune_batch(&self, cutoff: i64) -> Result<Pruned, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(self.query_error("begin"))?;
        if self.backend() == Backend::Postgres {
            // `IS NULL`: the lock function returns `void`, which the `Any` driver cannot
            // read.
            sqlx::query("SELECT pg_advisory_xact_lock($1) IS NULL")
                .bind(PRUNE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(self.query_error("wait for another replica's prune"))?;
        }
        // A write first, so that SQLite takes its write lock at once (a read first could
        // not turn into a write after another writer committed). The outer conditions
        // are checked again on PostgreSQL against a row another transaction just changed.
        // `RETURNING`: SQLite since 3.35.
        let claimed = sqlx::query(
            "UPDATE ledger_runs SET pruned_ms = $1, prunable = 0 \
             WHERE prunable = 1 AND last_ms < $2 AND run_id IN \
             (SELECT run_id FROM ledger_runs WHERE prunable = 1 AND last_ms < $2 \
             ORDER BY last_ms, run_id LIMIT $3) \
             RETURNING run_id",
        )
        .bind(now_ms())
        .bind(cutoff)
        .bind(PRUNE_BATCH as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.query_error("mark runs pruned"))?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(self.query_error("mark runs pruned"))?;
        if claimed.is_empty() {
            tx.commit().await.map_err(self.query_error("commit"))?;
            return Ok(Pruned::default());
        }
        let pruned = claimed.len() as u64;
        let runs = (1..=claimed.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let kinds = AUDIT_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("DELETE FROM ledger_events WHERE run_id IN ({runs}) AND kind NOT IN ({kinds})");
        let mut delete = sqlx::query(&sql);
        for run in claimed {
            delete = delete.bind(run);
        }
        let events = delete
            .execute(&mut *tx)
            .await
            .map_err(self.query_error("delete pruned events"))?
            .rows_affected();
        tx.commit().await.map_err(self.query_error("commit"))?;
        Ok(Pruned {
            runs: pruned,
            events,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The delivery recorder reads where each production stands at every start. By kind
    /// and time that read visited every deployment of every project and sorted them
    /// (a 10,000-run ledger's bench saw SQLite's page caches and a sorter grow the
    /// replica by megabytes); it must walk one environment's own index instead.
    #[tokio::test]
    async fn where_an_environment_stands_is_read_from_its_own_index_without_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        let url =
            LedgerUrl::parse(&format!("sqlite://{}/ledger.db", dir.path().display())).unwrap();
        let ledger = Ledger::open(&url).await.unwrap();
        let sql = last_facts_sql(&kind_list(&["deploy.succeeded", "test.failed"]));
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind("shop")
            .bind("production")
            .bind(20_i64)
            .bind(i64::MAX)
            .fetch_all(&ledger.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>(3).unwrap())
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("ledger_events_by_place"))
                && !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}

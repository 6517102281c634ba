//! Runs older than what a replica holds in memory (its newest [`crate::runs::KEPT_RUNS`]),
//! read from the ledger a page at a time and rebuilt as memory would hold them: the
//! dashboard's list and `ferry runs` go on past memory's end.

use crate::App;
use crate::runs::Run;
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// Runs read from the ledger per query while looking for a filtered page.
const BATCH: usize = 100;
/// At most this many runs are read for one page: a filter that matches almost nothing
/// answers in bounded time with a cursor to go on from.
const SCAN: usize = 2_000;
/// A page that takes the ledger longer than this is cut short (with its cursor).
const PATIENCE: Duration = Duration::from_secs(5);

/// Where a list goes on from: the (start, run id) of the last run it showed or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub ms: i64,
    pub run: Uuid,
}

impl Cursor {
    pub fn of(started: DateTime<Utc>, run: Uuid) -> Cursor {
        Cursor {
            ms: started.timestamp_millis(),
            run,
        }
    }

    /// `<ms>.<run id>`, as links carry it.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (ms, run) = s.split_once('.')?;
        Some(Cursor {
            ms: ms.parse().ok()?,
            run: run.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.ms, self.run)
    }
}

/// Where memory's list ends, for a list to go on in the ledger from (none: memory is
/// empty, and the ledger is read from the newest run).
pub fn memory_end(app: &App) -> Cursor {
    app.runs.oldest().map_or(
        Cursor {
            ms: i64::MAX,
            run: Uuid::max(),
        },
        |(t, r)| Cursor::of(t, r),
    )
}

/// Up to `limit` runs of `projects` older than `after` that `keep` accepts, newest first,
/// and the cursor to go on from if more may follow. Without a ledger: none.
pub async fn runs(
    app: &App,
    projects: &[String],
    after: Cursor,
    keep: impl Fn(&Run) -> bool,
    limit: usize,
) -> Result<(Vec<Run>, Option<Cursor>), ferry_ledger::LedgerError> {
    let Some(ledger) = app.ledger.get() else {
        return Ok((Vec::new(), None));
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut found, mut cursor, mut scanned) = (Vec::new(), after, 0);
    loop {
        let rows = ledger
            .runs_before(projects, (cursor.ms, &cursor.run.to_string()), BATCH)
            .await?;
        let exhausted = rows.len() < BATCH;
        for row in rows {
            let Ok(id) = row.run_id.parse::<Uuid>() else {
                continue;
            };
            cursor = Cursor {
                ms: row.first_ms,
                run: id,
            };
            scanned += 1;
            let events = ledger.run_events(&row.run_id).await?;
            if let Some(run) = crate::api::run_from_events(app, id, events)
                && keep(&run)
            {
                found.push(run);
                if found.len() == limit {
                    return Ok((found, Some(cursor)));
                }
            }
        }
        if exhausted {
            return Ok((found, None));
        }
        if scanned >= SCAN || tokio::time::Instant::now() > deadline {
            return Ok((found, Some(cursor)));
        }
    }
}

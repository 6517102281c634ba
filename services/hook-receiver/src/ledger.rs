//! Writing the run history into the ledger (`[ledger] url`), and reading it back at
//! start-up so that `ferry runs` knows runs older than the broker's stream keeps.
//!
//! The recorder follows the history stream from the offset the ledger has reached and
//! records each event with its offset in one transaction. An event it cannot write (the
//! database is down) is read again after a pause, and nothing after it is skipped: when
//! the database is back, the ledger catches up from the stream. Deploys never wait for
//! it; every replica records, and the ledger keeps each event once.

use crate::runs::RunIndex;
use ferry_ledger::{Ledger, LedgerUrl, Recorded};
use ferry_shared::event::Envelope;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How long start-up waits for the ledger before serving without its older runs.
const PRELOAD_PATIENCE: Duration = Duration::from_secs(10);

pub struct Counters {
    pub recorded: Arc<AtomicU64>,
    pub errors: Arc<AtomicU64>,
}

/// How long a hook waits for the ledger's answer on whether its delivery was taken before;
/// without one in time it is published (the stages recognise a repeat by its event ids).
const LOOKUP_PATIENCE: Duration = Duration::from_millis(500);

/// Whether every one of `events` is already in the ledger: the delivery was taken before,
/// by this replica or another, and its events published then.
pub async fn recorded_before(ledger: &Ledger, events: &[Envelope]) -> bool {
    let lookup = async {
        for e in events {
            if !ledger.has_event(e.event_id).await? {
                return Ok(false);
            }
        }
        Ok::<_, ferry_ledger::LedgerError>(!events.is_empty())
    };
    match tokio::time::timeout(LOOKUP_PATIENCE, lookup).await {
        Ok(Ok(seen)) => seen,
        Ok(Err(e)) => {
            tracing::warn!("delivery not looked up in the ledger: {e}");
            false
        }
        Err(_) => {
            tracing::warn!(
                "delivery not looked up: the ledger did not answer within {LOOKUP_PATIENCE:?}"
            );
            false
        }
    }
}

/// The newest runs the ledger holds, into `runs` (before the stream's own events, so that
/// each run's events arrive oldest first). Without a ledger answering in time: nothing.
pub async fn preload(url: &LedgerUrl, runs: &RunIndex, last_env: impl Fn(&str) -> Option<String>) {
    let loaded = tokio::time::timeout(PRELOAD_PATIENCE, async {
        let ledger = Ledger::open(url).await?;
        let events = ledger.recent_events(crate::runs::KEPT_RUNS).await;
        ledger.close().await;
        events
    })
    .await;
    match loaded {
        Ok(Ok(events)) => {
            let n = events.len();
            for e in events {
                runs.record(e, &last_env);
            }
            tracing::info!(events = n, ledger = %url.redacted(), "runs read from the ledger");
        }
        Ok(Err(e)) => tracing::warn!("older runs not read from the ledger: {e}"),
        Err(_) => tracing::warn!(
            ledger = %url.redacted(),
            "older runs not read: the ledger did not answer within {PRELOAD_PATIENCE:?}"
        ),
    }
}

/// Record the history into the ledger, forever: open it (retrying while it is away), then
/// follow the stream from where the ledger stands.
pub async fn record(app: Arc<crate::App>, url: LedgerUrl, counters: Counters) {
    let cfg = app.cfg.clone();
    let cap = Duration::from_millis(cfg.broker.reconnect_max_delay_ms.max(1_000));
    let mut attempt = 0;
    let ledger = loop {
        match Ledger::open(&url).await {
            Ok(l) => break Arc::new(l),
            Err(e) => {
                counters.errors.fetch_add(1, Relaxed);
                attempt += 1;
                if attempt == 1 || attempt % 30 == 0 {
                    tracing::error!("the ledger cannot be opened: {e}; trying again");
                }
                tokio::time::sleep(ferry_shared::bus::connect::backoff(attempt, cap)).await;
            }
        }
    };
    let start = loop {
        match ledger.next_offset().await {
            Ok(o) => break o,
            Err(e) => {
                counters.errors.fetch_add(1, Relaxed);
                tracing::warn!("{e}");
                tokio::time::sleep(cap).await;
            }
        }
    };
    let _ = app.ledger.set(ledger.clone());
    tracing::info!(ledger = %url.redacted(), from_offset = ?start, "recording the run history");
    let e = ferry_shared::bus::history::follow_from(cfg.broker.clone(), start, |event, offset| {
        let (ledger, counters) = (ledger.clone(), &counters);
        async move {
            match ledger.record(&event, Some(offset)).await {
                Ok(Recorded::New) => {
                    counters.recorded.fetch_add(1, Relaxed);
                    Ok(())
                }
                Ok(Recorded::Repeat) => Ok(()),
                Err(e) => {
                    counters.errors.fetch_add(1, Relaxed);
                    Err(e.to_string())
                }
            }
        }
    })
    .await;
    tracing::error!("the run history cannot be read for the ledger: {e}");
}

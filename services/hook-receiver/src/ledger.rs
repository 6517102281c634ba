//! Writing the run history into the ledger (`[ledger] url`), and reading it back at
//! start-up so that `ferry runs` knows runs older than the broker's stream keeps.
//!
//! The recorder follows the history stream from the offset the ledger has reached and
//! records each event with its offset in one transaction. An event it cannot write (the
//! database is down) is read again after a pause, and nothing after it is skipped: when
//! the database is back, the ledger catches up from the stream. Deploys never wait for
//! it; every replica records, and the ledger keeps each event once.
//!
//! With `ledger.keep_days` set, every replica also prunes the ledger, shortly after
//! start-up and then every hour: the events of runs whose last event is older are
//! deleted, all but their audit records. Replicas pruning at once share the work.

use crate::runs::RunIndex;
use ferry_ledger::{Ledger, LedgerUrl, Recorded};
use ferry_shared::event::Envelope;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::Duration;

/// How long after start-up the first prune comes (`ledger.keep_days`).
const PRUNE_FIRST_AFTER: Duration = Duration::from_secs(10);

/// How often a replica prunes after that.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long start-up waits for the ledger before serving without its older runs.
const PRELOAD_PATIENCE: Duration = Duration::from_secs(10);

pub struct Counters {
    pub recorded: Counter,
    pub errors: Counter,
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
    // Each event goes into memory as its row arrives (see `each_recent_event`).
    let loaded = tokio::time::timeout(PRELOAD_PATIENCE, async {
        let ledger = Ledger::open(url).await?;
        let n = ledger
            .each_recent_event(crate::runs::KEPT_RUNS, |e| runs.record(e, &last_env))
            .await;
        ledger.close().await;
        n
    })
    .await;
    match loaded {
        Ok(Ok(n)) => {
            tracing::info!(events = n, ledger = %url.redacted(), "runs read from the ledger");
        }
        Ok(Err(e)) => tracing::warn!("older runs not read from the ledger: {e}"),
        Err(_) => tracing::warn!(
            ledger = %url.redacted(),
            "older runs not all read: the ledger did not answer within {PRELOAD_PATIENCE:?}"
        ),
    }
}

/// Record the history into the ledger, forever: open it (retrying while it is away), then
/// follow the stream from where the ledger stands.
pub async fn record(
    app: Arc<crate::App>,
    url: LedgerUrl,
    counters: Counters,
    delivery: Arc<crate::delivery::Delivery>,
) {
    let cfg = app.cfg.clone();
    let cap = Duration::from_millis(cfg.broker.reconnect_max_delay_ms.max(1_000));
    let mut attempt = 0;
    let ledger = loop {
        match Ledger::open(&url).await {
            Ok(l) => break Arc::new(l),
            Err(e) => {
                counters.errors.inc();
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
                counters.errors.inc();
                tracing::warn!("{e}");
                tokio::time::sleep(cap).await;
            }
        }
    };
    // Which deployments serve in production, before following what comes after them.
    loop {
        match delivery.seed(&ledger).await {
            Ok(_) => break,
            Err(e) => {
                counters.errors.inc();
                tracing::warn!("the delivery figures' start was not read: {e}; trying again");
                tokio::time::sleep(cap).await;
            }
        }
    }
    let _ = app.ledger.set(ledger.clone());
    tracing::info!(ledger = %url.redacted(), from_offset = ?start, "recording the run history");
    let e = ferry_shared::bus::history::follow_from(cfg.broker.clone(), start, |event, offset| {
        let (ledger, counters, delivery) = (ledger.clone(), &counters, &delivery);
        async move {
            match ledger.record(&event, Some(offset)).await {
                Ok(Recorded::New) => {
                    counters.recorded.inc();
                    delivery.record(&ledger, &event, true).await;
                    Ok(())
                }
                Ok(Recorded::Repeat) => {
                    delivery.record(&ledger, &event, false).await;
                    Ok(())
                }
                Err(e) => {
                    counters.errors.inc();
                    Err(e.to_string())
                }
            }
        }
    })
    .await;
    tracing::error!("the run history cannot be read for the ledger: {e}");
}

/// Prune the ledger the recorder opened, forever: shortly after start-up, then every
/// [`PRUNE_EVERY`], the runs whose last event is more than `keep_days` old. A prune that
/// fails is logged and tried again next time; the batches it finished stay done.
pub async fn prune(app: Arc<crate::App>, keep_days: u32, pruned_runs: Counter) {
    tokio::time::sleep(PRUNE_FIRST_AFTER).await;
    let ledger = loop {
        if let Some(l) = app.ledger.get() {
            break l.clone();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let keep = chrono::Duration::days(i64::from(keep_days));
    loop {
        match ledger.prune(chrono::Utc::now() - keep).await {
            Ok(p) => {
                pruned_runs.inc_by(p.runs);
                if p.runs > 0 {
                    tracing::info!(
                        runs = p.runs,
                        events = p.events,
                        keep_days,
                        "runs pruned from the ledger (their audit records are kept)"
                    );
                }
            }
            Err(e) => tracing::warn!("the ledger was not pruned: {e}; trying again in an hour"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

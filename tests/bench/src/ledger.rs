//! `ledger_events_per_s`: events recorded into a fresh SQLite ledger file, one transaction
//! each (event, run row, history cursor), as the hook-receiver's recorder writes them: runs
//! of 20 events, published in order.

use ferry_ledger::{Ledger, LedgerUrl};
use ferry_shared::event::{Envelope, Event, StageFailed};
use std::time::Instant;

/// `events` events (runs of 20): recorded per second.
pub async fn sqlite_events_per_s(events: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let url = LedgerUrl::parse(&format!("sqlite://{}/ledger.db", dir.path().display()))
        .map_err(anyhow::Error::msg)?;
    let ledger = Ledger::open(&url).await?;
    let stream: Vec<Envelope> = (0..events.div_ceil(20))
        .flat_map(|_| run(20))
        .take(events)
        .collect();
    let t0 = Instant::now();
    for (offset, e) in stream.iter().enumerate() {
        ledger.record(e, Some(offset as u64)).await?;
    }
    let per_s = stream.len() as f64 / t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        ledger.event_count().await? == stream.len() as u64,
        "events missing"
    );
    ledger.close().await;
    Ok(per_s)
}

fn run(n: usize) -> Vec<Envelope> {
    let mut events = vec![ferry_testkit::source_changed("7")];
    while events.len() < n {
        let before = events.last().expect("a first event");
        let next = before.follow(
            Event::BuildFailed(StageFailed {
                service: "builder".into(),
                reason: "a reason a person can act on".into(),
                attempts: 1,
                failed_event_id: before.event_id,
                failed_kind: before.kind().into(),
            }),
            None,
        );
        events.push(next);
    }
    events
}

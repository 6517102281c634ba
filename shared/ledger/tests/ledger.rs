//! The ledger against real databases: an SQLite file, and the harness's PostgreSQL
//! (`FERRY_TEST_POSTGRES_URL`, a fresh database per test). Each behaviour is checked on
//! both: events recorded once whatever the repeats, runs summarised, the history cursor,
//! the schema migrated once across reopenings, and two replicas recording at once.

use ferry_ledger::{Backend, Ledger, LedgerUrl, Recorded};
use ferry_shared::event::{Envelope, Event};
use ferry_testkit::source_changed;
use std::collections::HashSet;

/// A fresh SQLite file in its own directory (kept alive by the returned guard).
fn sqlite() -> (LedgerUrl, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/ledger.db", dir.path().display());
    (LedgerUrl::parse(&url).unwrap(), dir)
}

/// A fresh database on the harness's PostgreSQL.
async fn postgres() -> LedgerUrl {
    let url = tokio::task::spawn_blocking(ferry_testkit::postgres::fresh_database)
        .await
        .unwrap()
        .unwrap();
    LedgerUrl::parse(&url).unwrap()
}

/// A run of `n` events: the first starts it, each of the others follows the one before
/// (an event's id derives from its cause and kind, as a retried stage's does).
fn run(project: &str, n: usize) -> Vec<Envelope> {
    let mut first = source_changed("41");
    first.project = project.to_owned();
    let mut events = vec![first.clone()];
    for i in 1..n {
        let before = events.last().unwrap();
        let mut e = before.follow(
            Event::BuildFailed(ferry_shared::event::StageFailed {
                reason: format!("step {i}"),
                attempts: 1,
                service: "builder".into(),
                failed_event_id: before.event_id,
                failed_kind: before.kind().into(),
            }),
            None,
        );
        e.time = first.time + chrono::Duration::milliseconds(i as i64);
        events.push(e);
    }
    events
}

async fn records_each_event_once_and_summarises_runs(url: LedgerUrl) {
    let ledger = Ledger::open(&url).await.unwrap();
    let a = run("shop", 3);
    // b starts later: the newest run.
    let b: Vec<Envelope> = run("shop", 2)
        .into_iter()
        .map(|mut e| {
            e.time += chrono::Duration::milliseconds(50);
            e
        })
        .collect();
    for (offset, e) in a.iter().chain(&b).enumerate() {
        let recorded = ledger.record(e, Some(offset as u64)).await.unwrap();
        assert_eq!(recorded, Recorded::New);
    }
    // A redelivery, a second replica, a replay from the stream: nothing changes.
    for e in &a {
        assert_eq!(ledger.record(e, Some(2)).await.unwrap(), Recorded::Repeat);
    }
    assert_eq!(ledger.event_count().await.unwrap(), 5);
    assert_eq!(
        ledger.next_offset().await.unwrap(),
        Some(5),
        "the cursor never goes back"
    );

    let runs = ledger.runs("shop", 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    let first = runs
        .iter()
        .find(|r| r.run_id == a[0].run_id.to_string())
        .unwrap();
    assert_eq!(first.events, 3);
    assert_eq!(first.revision.as_deref(), Some("41"));
    assert_eq!(first.last_kind, "build.failed");
    assert_eq!(first.first_ms, a[0].time.timestamp_millis());
    assert!(ledger.runs("other", 10).await.unwrap().is_empty());

    let events = ledger.run_events(&a[0].run_id.to_string()).await.unwrap();
    assert_eq!(events, a, "a run's events come back as they were published");
    ledger.close().await;

    // Opened again (a restart, another replica): the schema is not migrated twice and
    // everything is still there.
    let again = Ledger::open(&url).await.unwrap();
    assert_eq!(again.event_count().await.unwrap(), 5);
    let recent = again.recent_events(1).await.unwrap();
    assert_eq!(runs[0].run_id, b[0].run_id.to_string(), "newest first");
    assert_eq!(recent, b, "the newest run's events, oldest first");
    again.close().await;
}

/// Two replicas record the same stream at the same time, and each also events of the same
/// runs the other has not seen yet: every event once, every run's count exact.
async fn two_replicas_recording_at_once_lose_and_double_nothing(url: LedgerUrl) {
    let one = Ledger::open(&url).await.unwrap();
    let two = Ledger::open(&url).await.unwrap();
    let runs: Vec<Vec<Envelope>> = (0..20).map(|_| run("shop", 10)).collect();
    let all: Vec<Envelope> = runs.iter().flatten().cloned().collect();
    let mut reversed = all.clone();
    reversed.reverse();
    let (a, b) = tokio::join!(record_all(&one, &all), record_all(&two, &reversed));
    assert_eq!(a + b, all.len(), "each event recorded as new exactly once");
    assert_eq!(one.event_count().await.unwrap(), all.len() as u64);
    let rows = one.runs("shop", 100).await.unwrap();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.events == 10), "{rows:?}");
    let ids: HashSet<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    assert_eq!(ids.len(), 20);
    one.close().await;
    two.close().await;
}

/// Record every event; how many were new.
async fn record_all(ledger: &Ledger, events: &[Envelope]) -> usize {
    let mut new = 0;
    for e in events {
        if ledger.record(e, None).await.unwrap() == Recorded::New {
            new += 1;
        }
    }
    new
}

#[tokio::test]
async fn sqlite_records_each_event_once_and_summarises_runs() {
    let (url, _dir) = sqlite();
    assert_eq!(url.backend(), Backend::Sqlite);
    records_each_event_once_and_summarises_runs(url).await;
}

#[tokio::test]
async fn postgres_records_each_event_once_and_summarises_runs() {
    records_each_event_once_and_summarises_runs(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_replicas_recording_at_once_lose_and_double_nothing() {
    let (url, _dir) = sqlite();
    two_replicas_recording_at_once_lose_and_double_nothing(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_recording_at_once_lose_and_double_nothing() {
    two_replicas_recording_at_once_lose_and_double_nothing(postgres().await).await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error_without_its_password() {
    let port = ferry_testkit::free_port();
    let url =
        LedgerUrl::parse(&format!("postgres://ferry:hunter2@127.0.0.1:{port}/ferry")).unwrap();
    let err = match Ledger::open(&url).await {
        Ok(_) => panic!("opened a ledger on a closed port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot open the ledger"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Replicas starting together on one SQLite file each migrate it: all of them open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replicas_opening_a_new_ledger_together_all_open_it() {
    let (url, _dir) = sqlite();
    let opened = futures_util::future::join_all((0..4).map(|_| Ledger::open(&url))).await;
    for (i, o) in opened.iter().enumerate() {
        assert!(o.is_ok(), "replica {i}: {:?}", o.as_ref().err());
    }
}

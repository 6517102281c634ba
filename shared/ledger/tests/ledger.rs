//! The ledger against real databases: an SQLite file, and the harness's PostgreSQL
//! (`FERRY_TEST_POSTGRES_URL`, a fresh database per test). Each behaviour is checked on
//! both: events recorded once whatever the repeats, runs summarised, the history cursor,
//! the schema migrated once across reopenings, two replicas recording at once, and
//! retention: old runs pruned down to their audit records, by replicas pruning at once.

use chrono::{DateTime, Duration, Utc};
use ferry_ledger::{AUDIT_KINDS, Backend, Ledger, LedgerUrl, PRUNE_BATCH, Pruned, Recorded};
use ferry_shared::event::{
    ApprovalRequested, Decision, DeployReason, DeployRequested, Envelope, Event, ScaleRequested,
    StageFailed,
};
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

/// Add the event that follows the last of `events`, a millisecond later.
fn then(events: &mut Vec<Envelope>, event: Event, environment: Option<&str>) {
    let before = events.last().unwrap();
    let mut e = before.follow(event, environment);
    e.time = before.time + Duration::milliseconds(1);
    events.push(e);
}

fn failed(before: &Envelope, reason: &str) -> Event {
    let stage = StageFailed {
        reason: reason.into(),
        attempts: 1,
        service: "test".into(),
        failed_event_id: before.event_id,
        failed_kind: before.kind().into(),
    };
    match before.kind() {
        "source.changed" => Event::BuildFailed(stage),
        _ => Event::DeployFailed(stage),
    }
}

/// A run that began at `at`, with audit records among its events: its commit, a build that
/// failed, an approval asked for and granted with a comment, a deploy an operator asked
/// for that failed, a scaling.
fn audited_run(at: DateTime<Utc>) -> Vec<Envelope> {
    let mut start = source_changed("7");
    start.time = at;
    let mut events = vec![start];
    let e = failed(&events[0], "compile error");
    then(&mut events, e, None);
    let (revision, image) = ("7".to_owned(), "shop@sha256:77".to_owned());
    then(
        &mut events,
        Event::ApprovalRequested(ApprovalRequested {
            revision: revision.clone(),
            image: image.clone(),
            passed_in: None,
            expires_at: at + Duration::days(1),
            canary_percent: None,
        }),
        Some("production"),
    );
    then(
        &mut events,
        Event::ApprovalGranted(Decision {
            revision: revision.clone(),
            image: image.clone(),
            by: "alice".into(),
            at,
            comment: Some("ship it".into()),
        }),
        Some("production"),
    );
    then(
        &mut events,
        Event::DeployRequested(DeployRequested {
            revision,
            image,
            reason: DeployReason::Manual,
            requested_by: Some("bob".into()),
        }),
        Some("production"),
    );
    let e = failed(events.last().unwrap(), "health check failed");
    then(&mut events, e, Some("production"));
    then(
        &mut events,
        Event::ScaleRequested(ScaleRequested {
            to: 3,
            requested_by: Some("carol".into()),
        }),
        Some("production"),
    );
    events
}

fn audit_records(run: &[Envelope]) -> Vec<Envelope> {
    run.iter()
        .filter(|e| AUDIT_KINDS.contains(&e.kind()))
        .cloned()
        .collect()
}

async fn prunes_old_runs_down_to_their_audit_records(url: LedgerUrl) {
    let ledger = Ledger::open(&url).await.unwrap();
    let now = Utc::now();
    let old = [
        audited_run(now - Duration::days(40)),
        audited_run(now - Duration::days(31)),
    ];
    // Began long ago, and still going: its last event is recent.
    let mut long = audited_run(now - Duration::days(60));
    long.last_mut().unwrap().time = now - Duration::hours(1);
    let new = [audited_run(now - Duration::days(2)), audited_run(now), long];
    let all: Vec<&Envelope> = old.iter().chain(&new).flatten().collect();
    for (offset, e) in all.iter().enumerate() {
        ledger.record(e, Some(offset as u64)).await.unwrap();
    }
    assert_eq!(ledger.event_count().await.unwrap(), 35);
    let audited = audit_records(&old[0]).len();
    assert_eq!(audited, 4);

    let cutoff = now - Duration::days(30);
    let pruned = ledger.prune(cutoff).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            runs: 2,
            events: 2 * (7 - audited as u64)
        }
    );
    assert_eq!(ledger.event_count().await.unwrap(), 35 - 6);
    for run in &old {
        let left = ledger.run_events(&run[0].run_id.to_string()).await.unwrap();
        assert_eq!(left, audit_records(run), "the audit records, as published");
        let granted = left
            .iter()
            .find_map(|e| match &e.event {
                Event::ApprovalGranted(d) => Some(d),
                _ => None,
            })
            .expect("the approval is kept");
        assert_eq!(granted.by, "alice");
        assert_eq!(granted.comment.as_deref(), Some("ship it"));
        assert!(left.iter().any(|e| matches!(&e.event,
            Event::DeployRequested(d) if d.requested_by.as_deref() == Some("bob"))));
    }
    for run in &new {
        let kept = ledger.run_events(&run[0].run_id.to_string()).await.unwrap();
        assert_eq!(&kept, run, "a run whose last event is recent is untouched");
    }
    let rows = ledger.runs("shop", 10).await.unwrap();
    assert_eq!(rows.len(), 5, "every run's row stays");
    for row in &rows {
        let run = all
            .iter()
            .find(|e| e.run_id.to_string() == row.run_id)
            .unwrap();
        let is_old = old.iter().any(|r| r[0].run_id == run.run_id);
        assert_eq!(row.pruned, is_old, "{row:?}");
        assert_eq!(row.events, 7, "the summary stays: {row:?}");
        assert_eq!(row.revision.as_deref(), Some("7"));
    }
    let summary = rows
        .iter()
        .find(|r| r.run_id == old[0][0].run_id.to_string())
        .unwrap();
    assert_eq!(summary.first_ms, old[0][0].time.timestamp_millis());
    assert_eq!(summary.last_ms, old[0][6].time.timestamp_millis());
    assert_eq!(summary.last_kind, "scale.requested.production");

    assert_eq!(
        ledger.prune(cutoff).await.unwrap(),
        Pruned::default(),
        "a second prune finds nothing to do"
    );
    assert_eq!(ledger.event_count().await.unwrap(), 29);
    assert_eq!(
        ledger.recent_events(10).await.unwrap().len(),
        29,
        "what is left of pruned runs is read back at start-up"
    );

    // A late redelivery of an event the prune deleted is recorded again, and the next
    // prune deletes it again; the run stays pruned throughout.
    let late = &old[0][1];
    assert_eq!(ledger.record(late, None).await.unwrap(), Recorded::New);
    let row = |rows: Vec<ferry_ledger::RunRow>| {
        rows.into_iter()
            .find(|r| r.run_id == late.run_id.to_string())
            .unwrap()
    };
    let again = row(ledger.runs("shop", 10).await.unwrap());
    assert!(again.pruned);
    assert_eq!(again.events, 8, "the redelivery counts again");
    assert_eq!(ledger.event_count().await.unwrap(), 30);
    assert_eq!(
        ledger.prune(cutoff).await.unwrap(),
        Pruned { runs: 1, events: 1 }
    );
    assert_eq!(ledger.event_count().await.unwrap(), 29);
    assert!(row(ledger.runs("shop", 10).await.unwrap()).pruned);
    ledger.close().await;
}

/// More old runs than a batch holds, pruned by two replicas at once: each run once, every
/// event but the audit records deleted once.
async fn two_replicas_pruning_at_once_prune_each_run_once(url: LedgerUrl) {
    let one = Ledger::open(&url).await.unwrap();
    let two = Ledger::open(&url).await.unwrap();
    let n = 2 * PRUNE_BATCH + 50;
    let long_ago = Utc::now() - Duration::days(100);
    let runs: Vec<Vec<Envelope>> = (0..n)
        .map(|i| {
            let mut run = run("shop", 2);
            let shift = long_ago + Duration::milliseconds(i as i64 * 10) - run[0].time;
            for e in &mut run {
                e.time += shift;
            }
            run
        })
        .collect();
    let (first, second) = runs.split_at(n / 2);
    let first: Vec<Envelope> = first.iter().flatten().cloned().collect();
    let second: Vec<Envelope> = second.iter().flatten().cloned().collect();
    let (a, b) = tokio::join!(record_all(&one, &first), record_all(&two, &second));
    assert_eq!(a + b, 2 * n);

    let cutoff = Utc::now() - Duration::days(30);
    let (a, b) = tokio::join!(one.prune(cutoff), two.prune(cutoff));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.runs + b.runs, n as u64, "{a:?} {b:?}");
    assert_eq!(a.events + b.events, n as u64, "{a:?} {b:?}");
    assert_eq!(
        one.event_count().await.unwrap(),
        n as u64,
        "the commits are kept"
    );
    let rows = one.runs("shop", 2 * n).await.unwrap();
    assert_eq!(rows.len(), n);
    assert!(rows.iter().all(|r| r.pruned && r.events == 2));
    assert_eq!(two.prune(cutoff).await.unwrap(), Pruned::default());
    one.close().await;
    two.close().await;
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
async fn sqlite_prunes_old_runs_down_to_their_audit_records() {
    let (url, _dir) = sqlite();
    prunes_old_runs_down_to_their_audit_records(url).await;
}

#[tokio::test]
async fn postgres_prunes_old_runs_down_to_their_audit_records() {
    prunes_old_runs_down_to_their_audit_records(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_replicas_pruning_at_once_prune_each_run_once() {
    let (url, _dir) = sqlite();
    two_replicas_pruning_at_once_prune_each_run_once(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_pruning_at_once_prune_each_run_once() {
    two_replicas_pruning_at_once_prune_each_run_once(postgres().await).await;
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

//! The run ledger on the harness's real PostgreSQL: the hook-receiver records every event
//! of the history; a database that goes down stops no run (hooks are still accepted and
//! published) and the ledger catches up when it is back, with nothing lost or doubled
//! against what a tap saw; a receiver started after the broker's stream lost its events
//! still lists the runs, from the ledger; with `ledger.keep_days`, a replica prunes it.
//!
//! Named `postgres_*`: they run one at a time among the tests using PostgreSQL (nextest
//! group `postgres`), since one of them stops it.

mod common;

use common::*;
use ferry_ledger::{Ledger, LedgerUrl};
use ferry_shared::bus::{Publisher, Topology};
use ferry_shared::config::FerryConfig;
use ferry_testkit::{Tap, amqp_url, http_request, postgres, source_changed, unique_namespace};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const ALICE: &str = "alice-token-0123456789";
const SECS: fn(u64) -> Duration = Duration::from_secs;

fn ledger_config(ns: &str, ledger_url: &str) -> Arc<FerryConfig> {
    config(
        &amqp_url(),
        ns,
        "svn://127.0.0.1/repo",
        &format!(
            "[ledger]\n        url = \"{ledger_url}\"\n        [operators.alice]\n        token = \"{ALICE}\"\n        can = [\"view\"]"
        ),
    )
}

/// The history stream exists before anything is published (the receiver declares it
/// too, but only once its reader is connected).
async fn declare_history(cfg: &FerryConfig) {
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    Topology::history(&cfg.broker)
        .declare(&conn.create_channel().await.unwrap())
        .await
        .unwrap();
    let _ = conn.close(200, "declared".into()).await;
}

/// A fresh database, namespace and configuration, the history stream declared.
async fn setup() -> (String, String, Arc<FerryConfig>) {
    let url = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap()
        .unwrap();
    let ns = unique_namespace();
    let cfg = ledger_config(&ns, &url);
    declare_history(&cfg).await;
    (url, ns, cfg)
}

/// Every event id the ledger holds for these runs.
async fn recorded(ledger: &Ledger, runs: &HashSet<String>) -> HashSet<uuid::Uuid> {
    let mut ids = HashSet::new();
    for run in runs {
        for e in ledger.run_events(run).await.unwrap() {
            ids.insert(e.event_id);
        }
    }
    ids
}

async fn wait_for_count(ledger: &Ledger, n: u64, within: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let count = ledger.event_count().await.unwrap_or(0);
        if count >= n || tokio::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_stops_no_run_and_the_ledger_catches_up_with_nothing_lost_or_doubled() {
    let (url, ns, cfg) = setup().await;
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let receiver = start(cfg.clone()).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let mut runs = HashSet::new();
    for i in 0..10 {
        let e = source_changed(&i.to_string());
        runs.insert(e.run_id.to_string());
        publisher.publish(&e).await.unwrap();
    }
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_for_count(&ledger, 10, SECS(20)).await,
        10,
        "recorded before the outage"
    );
    ledger.close().await;

    // The database goes away; runs go on: hooks are accepted and their events published.
    tokio::task::spawn_blocking(postgres::stop)
        .await
        .unwrap()
        .unwrap();
    let auth = format!("Bearer {MANUAL_TOKEN}");
    for i in 0..5 {
        let body = format!(r#"{{"project":"shop","revision":"down-{i}"}}"#);
        let (status, reply) = receiver
            .post(
                "manual",
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", &auth),
                ],
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 202, "a hook while the ledger is down: {reply}");
        for id in reply["run_ids"].as_array().unwrap() {
            runs.insert(id.as_str().unwrap().to_owned());
        }
    }
    for i in 10..20 {
        let e = source_changed(&i.to_string());
        runs.insert(e.run_id.to_string());
        publisher.publish(&e).await.unwrap();
    }
    tokio::time::sleep(SECS(3)).await;
    tokio::task::spawn_blocking(postgres::start)
        .await
        .unwrap()
        .unwrap();

    // What the tap saw is what the ledger holds, once each.
    let seen: HashSet<uuid::Uuid> = tap
        .drain(SECS(2))
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(seen.len(), 25, "the tap saw every event");
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let count = wait_for_count(&ledger, 25, SECS(60)).await;
    assert_eq!(count, 25, "the ledger did not catch up after the outage");
    assert_eq!(recorded(&ledger, &runs).await, seen);

    // A second receiver (a restart, another replica) records nothing twice.
    receiver.stop().await;
    let again = start(cfg.clone()).await;
    tokio::time::sleep(SECS(3)).await;
    assert_eq!(ledger.event_count().await.unwrap(), 25);
    again.stop().await;
    ledger.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs_the_stream_no_longer_holds_are_listed_from_the_ledger() {
    let (url, ns, cfg) = setup().await;
    let receiver = start(cfg.clone()).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let old = source_changed("17");
    publisher.publish(&old).await.unwrap();
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(wait_for_count(&ledger, 1, SECS(20)).await, 1);
    receiver.stop().await;

    // The broker forgets (retention): the stream is deleted and declared empty again.
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let stream = ferry_shared::bus::topology::history_queue_name(&ns);
    ch.queue_delete(stream.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = conn.close(200, "forgot".into()).await;
    declare_history(&cfg).await;

    let api = start(cfg.clone()).await;
    let auth = format!("Bearer {ALICE}");
    let listed = ferry_testkit::wait_until(SECS(15), || async {
        let (status, body) = http_request(
            api.addr,
            "GET",
            "/api/projects/shop/runs",
            &[("Authorization", &auth)],
            b"",
        )
        .await
        .unwrap();
        status == 200 && body.contains(&old.run_id.to_string())
    })
    .await;
    assert!(
        listed,
        "the run from before the stream was emptied is not listed"
    );
    let (_, body) = http_request(
        api.addr,
        "GET",
        &format!("/api/runs/{}", old.run_id),
        &[("Authorization", &auth)],
        b"",
    )
    .await
    .unwrap();
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["revision"], "17", "{body}");
    api.stop().await;
    ledger.close().await;
}

/// Two replicas share a ledger (an SQLite file here): a delivery the first took is
/// answered by the second as a duplicate, from the ledger, and published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_one_replica_took_is_a_duplicate_at_another_through_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = unique_namespace();
    let cfg = ledger_config(&ns, &url);
    declare_history(&cfg).await;
    let mut tap = Tap::new(&amqp_url(), &ns, "source.#").await.unwrap();
    let one = start(cfg.clone()).await;
    let two = start(cfg.clone()).await;
    let body = fixture("gitlab-push.json");
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", GITLAB_TOKEN),
        ("Idempotency-Key", "delivery-7"),
    ];
    let (status, first) = one.post("gitlab", &headers, &body).await;
    assert_eq!(status, 202, "{first}");
    assert!(first.get("duplicate").is_none(), "{first}");

    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(wait_for_count(&ledger, 1, SECS(20)).await, 1);
    let (status, again) = two.post("gitlab", &headers, &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        again["duplicate"], true,
        "the second replica did not know the delivery: {again}"
    );
    assert_eq!(again["run_ids"], first["run_ids"]);
    let published = tap.drain(SECS(1)).await;
    assert_eq!(published.len(), 1, "published {} times", published.len());
    one.stop().await;
    two.stop().await;
    ledger.close().await;
}

/// A run this replica never had in memory (older than the newest 10,000 it keeps, or
/// recorded by another replica from a stream this one no longer has) is read from the
/// ledger when asked for by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_not_in_memory_is_read_from_the_ledger_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = unique_namespace();
    let cfg = ledger_config(&ns, &url);
    declare_history(&cfg).await;
    let api = start(cfg.clone()).await;
    // Written straight into the ledger: never on this namespace's stream.
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let old = source_changed("3");
    ledger.record(&old, None).await.unwrap();
    let auth = format!("Bearer {ALICE}");
    let path = format!("/api/runs/{}", old.run_id);
    let found = ferry_testkit::wait_until(SECS(10), || async {
        matches!(
            http_request(api.addr, "GET", &path, &[("Authorization", &auth)], b"").await,
            Ok((200, _))
        )
    })
    .await;
    assert!(found, "the run in the ledger was not found by id");
    let (_, body) = http_request(api.addr, "GET", &path, &[("Authorization", &auth)], b"")
        .await
        .unwrap();
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["revision"], "3", "{body}");
    assert_eq!(run["events"][0]["kind"], "source.changed", "{body}");
    let unknown = format!("/api/runs/{}", uuid::Uuid::new_v4());
    let (status, _) = http_request(api.addr, "GET", &unknown, &[("Authorization", &auth)], b"")
        .await
        .unwrap();
    assert_eq!(status, 404);
    api.stop().await;
    ledger.close().await;
}

/// With `ledger.keep_days`, a replica prunes the ledger shortly after start-up: a run
/// older than that keeps its row and its commit, a recent one everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_prunes_runs_older_than_keep_days() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = unique_namespace();
    let cfg = config(
        &amqp_url(),
        &ns,
        "svn://127.0.0.1/repo",
        &format!("[ledger]\n        url = \"{url}\"\n        keep_days = 1"),
    );
    assert_eq!(cfg.ledger.keep_days, Some(1));
    declare_history(&cfg).await;
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let run = |revision: &str, age: chrono::Duration| {
        let mut start = source_changed(revision);
        start.time -= age;
        let mut failed = start.follow(
            ferry_shared::event::Event::BuildFailed(ferry_shared::event::StageFailed {
                reason: "compile error".into(),
                attempts: 1,
                service: "builder".into(),
                failed_event_id: start.event_id,
                failed_kind: start.kind().into(),
            }),
            None,
        );
        failed.time = start.time + chrono::Duration::seconds(1);
        [start, failed]
    };
    let old = run("5", chrono::Duration::days(3));
    let new = run("6", chrono::Duration::hours(2));
    for e in old.iter().chain(&new) {
        ledger.record(e, None).await.unwrap();
    }
    let receiver = start(cfg.clone()).await;
    let pruned = ferry_testkit::wait_until(SECS(40), || async {
        ledger
            .runs("shop", 10)
            .await
            .unwrap()
            .iter()
            .any(|r| r.run_id == old[0].run_id.to_string() && r.pruned)
    })
    .await;
    assert!(pruned, "the old run was not pruned");
    let left = ledger.run_events(&old[0].run_id.to_string()).await.unwrap();
    assert_eq!(left, old[..1], "the commit is kept");
    let kept = ledger.run_events(&new[0].run_id.to_string()).await.unwrap();
    assert_eq!(kept, new, "a recent run is untouched");
    receiver.stop().await;
    ledger.close().await;
}

//! Delivery metrics from real events on the real broker, recorded by two replicas into
//! one ledger: each event is counted once across replicas (never by both, never again
//! after a restart); deployment frequency, lead time, change failure rate and time to
//! restore come out as the runs did; a replica that starts after a run's commit still
//! gives its lead time (read back from the ledger); the dashboard's delivery page shows
//! the same figures.

mod common;

use chrono::{Duration as Span, Utc};
use common::dashboard::{ALICE, a_run, config, declare_history};
use ferry_ledger::{Ledger, LedgerUrl};
use ferry_shared::bus::Publisher;
use ferry_shared::event::{DeployRolledBack, Envelope, Event};
use hook_receiver::HookReceiver;
use std::net::SocketAddr;
use std::time::Duration;

struct Replica {
    admin: SocketAddr,
    web: SocketAddr,
    trigger: ferry_shared::shutdown::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

async fn replica(cfg: std::sync::Arc<ferry_shared::config::FerryConfig>) -> Replica {
    let r = HookReceiver::bind(cfg).await.unwrap();
    let (admin, web) = (r.admin_addr, r.addr);
    let (trigger, stop) = ferry_shared::shutdown::channel();
    let task = tokio::spawn(async move { r.run_until_stopped(stop.wait_owned()).await.unwrap() });
    Replica {
        admin,
        web,
        trigger,
        task,
    }
}

impl Replica {
    async fn metrics(&self) -> String {
        let (status, text) = ferry_testkit::http_request(self.admin, "GET", "/metrics", &[], b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
        text
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.task.await.unwrap();
    }
}

/// The sum of every sample of `name` whose labels include each of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the test adds up over replicas (each counts what it recorded first).
#[derive(Debug, Default, PartialEq)]
struct Counts {
    runs_started: f64,
    production_deploys: f64,
    failures_test: f64,
    failures_rollback: f64,
    rollbacks: f64,
    lead_times: f64,
    lead_time_sum: f64,
    restores: f64,
    restore_sum: f64,
    builds: f64,
}

fn counts(text: &str) -> Counts {
    let shop = "project=\"shop\"";
    let prod = "environment=\"production\"";
    Counts {
        runs_started: value(text, "ferry_runs_started_total", &[shop]),
        production_deploys: value(text, "ferry_production_deploys_total", &[shop, prod]),
        failures_test: value(
            text,
            "ferry_change_failures_total",
            &[shop, "cause=\"test_failed\""],
        ),
        failures_rollback: value(
            text,
            "ferry_change_failures_total",
            &[shop, "cause=\"rolled_back\""],
        ),
        rollbacks: value(text, "ferry_rollbacks_total", &[shop, prod]),
        lead_times: value(text, "ferry_lead_time_seconds_count", &[shop]),
        lead_time_sum: value(text, "ferry_lead_time_seconds_sum", &[shop]),
        restores: value(text, "ferry_time_to_restore_seconds_count", &[shop]),
        restore_sum: value(text, "ferry_time_to_restore_seconds_sum", &[shop]),
        builds: value(
            text,
            "ferry_stage_duration_seconds_count",
            &[shop, "stage=\"build\""],
        ),
    }
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        runs_started: a.runs_started + b.runs_started,
        production_deploys: a.production_deploys + b.production_deploys,
        failures_test: a.failures_test + b.failures_test,
        failures_rollback: a.failures_rollback + b.failures_rollback,
        rollbacks: a.rollbacks + b.rollbacks,
        lead_times: a.lead_times + b.lead_times,
        lead_time_sum: a.lead_time_sum + b.lead_time_sum,
        restores: a.restores + b.restores,
        restore_sum: a.restore_sum + b.restore_sum,
        builds: a.builds + b.builds,
    }
}

/// A run to production whose tests there passed (`a_run` without its failed test),
/// committed `commit_before` seconds before Ferry heard of it, its events moved to
/// start at `start`.
fn passing_run(start: chrono::DateTime<Utc>, commit_before: i64) -> Vec<Envelope> {
    let mut run = a_run("shop");
    run.pop();
    place(&mut run, start, commit_before);
    run
}

fn place(run: &mut [Envelope], start: chrono::DateTime<Utc>, commit_before: i64) {
    let shift = start - run[0].time;
    for e in run.iter_mut() {
        e.time += shift;
    }
    if let Event::SourceChanged(s) = &mut run[0].event {
        s.committed = Some(start - Span::seconds(commit_before));
    }
}

/// Production rolled back to revision 6 at `at`, after `failed` (its run's failed test).
fn rollback_after(failed: &Envelope, at: chrono::DateTime<Utc>) -> Envelope {
    let mut e = failed.follow(
        Event::DeployRolledBack(DeployRolledBack {
            revision: "6".into(),
            image: "127.0.0.1:5000/shop:6".into(),
            from_revision: Some("7".into()),
            from_image: None,
            reason: "1 of 2 checks failed".into(),
            hosts: vec![],
        }),
        Some("production"),
    );
    e.time = at;
    e
}

async fn publish(p: &Publisher, events: &[Envelope]) {
    for e in events {
        p.publish(e).await.unwrap();
    }
}

async fn wait_for_events(ledger: &Ledger, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let count = ledger.event_count().await.unwrap_or(0);
        if count >= n {
            assert_eq!(count, n, "the ledger holds more events than were published");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ledger holds {count} of {n} events after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Until the replicas' counters add up to at least `n` production deploys (they count
/// right after the ledger write).
async fn settled(replicas: &[&Replica], n: f64) -> Counts {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut total = Counts::default();
        for r in replicas {
            total = add(total, counts(&r.metrics().await));
        }
        if total.production_deploys >= n || tokio::time::Instant::now() > deadline {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_each_delivery_fact_once_and_a_restarted_one_counts_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = ferry_testkit::unique_namespace();
    let cfg = config(&ns, &format!("[ledger]\nurl = \"{url}\""));
    declare_history(&cfg).await;
    let a = replica(cfg.clone()).await;
    let b = replica(cfg.clone()).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let t0 = Utc::now() - Span::hours(3);

    // Run 1 reaches production and passes; run 2 reaches production, fails its tests
    // there and is rolled back 90 s later; run 3's commit arrives now, the rest later.
    let one = passing_run(t0, 600);
    let mut two = a_run("shop");
    place(&mut two, t0 + Span::minutes(30), 300);
    let failed = two.last().unwrap().clone();
    let rolled_back = rollback_after(&failed, failed.time + Span::seconds(90));
    two.push(rolled_back);
    let mut three = passing_run(t0 + Span::hours(1), 1200);
    let rest_of_three = three.split_off(1);
    publish(&publisher, &one).await;
    publish(&publisher, &two).await;
    publish(&publisher, &three).await;
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let published = (one.len() + two.len() + three.len()) as u64;
    wait_for_events(&ledger, published).await;

    let before = settled(&[&a, &b], 2.0).await;
    let deployed_two = two
        .iter()
        .rev()
        .find(|e| e.kind() == "deploy.succeeded")
        .unwrap()
        .time;
    let lead = |run: &[Envelope], commit_before: i64| {
        let deployed = run.iter().rev().find(|e| e.kind() == "deploy.succeeded");
        (deployed.unwrap().time - run[0].time).num_milliseconds() as f64 / 1000.0
            + commit_before as f64
    };
    assert_eq!(
        before,
        Counts {
            runs_started: 3.0,
            production_deploys: 2.0,
            failures_test: 1.0,
            failures_rollback: 0.0,
            rollbacks: 1.0,
            lead_times: 2.0,
            lead_time_sum: lead(&one, 600) + lead(&two, 300),
            restores: 1.0,
            restore_sum: ((two.last().unwrap().time - deployed_two).num_milliseconds() as f64)
                / 1000.0,
            builds: 2.0,
        },
        "the two replicas together counted each fact once"
    );

    // Both replicas go; a new one resumes where the ledger stands: it counts nothing
    // of what was recorded, and gives run 3's lead time from a commit recorded before
    // it started (read back from the ledger).
    let (a_text, b_text) = (a.metrics().await, b.metrics().await);
    a.stop().await;
    b.stop().await;
    let c = replica(cfg.clone()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        counts(&c.metrics().await).production_deploys,
        0.0,
        "a restarted replica counted again"
    );
    publish(&publisher, &rest_of_three).await;
    wait_for_events(&ledger, published + rest_of_three.len() as u64).await;
    let after = settled(&[&c], 1.0).await;
    assert_eq!(after.production_deploys, 1.0);
    assert_eq!(after.runs_started, 0.0, "run 3's commit was counted before");
    assert_eq!(after.lead_times, 1.0, "run 3's lead time");
    assert!(
        (after.lead_time_sum - lead(&three_all(&three, &rest_of_three), 1200)).abs() < 0.01,
        "run 3's lead time runs from its commit: {}",
        after.lead_time_sum
    );
    let total = add(add(counts(&a_text), counts(&b_text)), after);
    assert_eq!(total.production_deploys, 3.0);
    assert_eq!(total.runs_started, 3.0);

    // The dashboard's delivery page: 3 deployments, 1 failure, from the ledger.
    let page = dashboard_page(c.web, "/delivery?days=7").await;
    assert!(page.contains("data-project=\"shop\""), "{page}");
    assert!(
        page.contains("33% (1/3)"),
        "the change failure rate: {page}"
    );
    // Three deployments over the 7 days: what increase(...[7d]) / 7 gives.
    assert!(
        page.contains("class=\"frequency\">0.43 "),
        "the deployment frequency: {page}"
    );
    assert!(
        page.contains("data-deployments="),
        "the chart's bars: {page}"
    );
    c.stop().await;
    ledger.close().await;
}

fn three_all(head: &[Envelope], rest: &[Envelope]) -> Vec<Envelope> {
    head.iter().chain(rest).cloned().collect()
}

/// A dashboard page as alice sees it.
async fn dashboard_page(addr: SocketAddr, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = common::dashboard::session_cookie(&http, addr, ALICE).await;
    let page = http
        .get(format!("http://{addr}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// A production deployment made long before the window fails its tests; its event is
/// delivered again (a stage that died before its ack); the rollback that restores it
/// comes 100 days later. Prometheus counts one failure and one restore of 100 days, and
/// the delivery page, whose window starts long after the deployment, shows that restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_failed_deployment_restored_today_counts_once_and_shows_on_the_page() {
    let (r, publisher, ledger, _dir) = one_replica().await;

    let mut run = a_run("shop");
    // Its events span a minute or two; the rollback 100 days after its deploy must not
    // lie in the future.
    place(
        &mut run,
        Utc::now() - Span::days(100) - Span::minutes(10),
        600,
    );
    let deployed = run
        .iter()
        .rev()
        .find(|e| e.kind() == "deploy.succeeded")
        .unwrap()
        .clone();
    let rolled_back = rollback_after(run.last().unwrap(), deployed.time + Span::days(100));
    publish(&publisher, &run).await;
    publish(&publisher, std::slice::from_ref(&deployed)).await;
    publish(&publisher, std::slice::from_ref(&rolled_back)).await;
    wait_for_events(&ledger, run.len() as u64 + 1).await;

    let got = counted(&r, |c| c.restores >= 1.0).await;
    assert_eq!(
        (
            got.production_deploys,
            got.failures_test,
            got.failures_rollback
        ),
        (1.0, 1.0, 0.0),
        "one deployment, one failure, whatever was delivered twice"
    );
    assert_eq!((got.restores, got.restore_sum), (1.0, 100.0 * 86_400.0));

    let page = dashboard_page(r.web, "/delivery?days=7").await;
    assert!(
        page.contains("class=\"restore\">100.0 d<"),
        "the restore of a deployment older than the window: {page}"
    );
    r.stop().await;
    ledger.close().await;
}

/// A commit made 60 days ago and deployed now: the page's read of the last 7 days (and
/// 30 before) does not reach the commit, and reads the run for it, as the recorder did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_of_a_commit_older_than_the_page_s_read_has_the_same_lead_time() {
    let (r, publisher, ledger, _dir) = one_replica().await;
    let mut run = passing_run(Utc::now() - Span::minutes(10), 600);
    run[0].time = Utc::now() - Span::days(60);
    let committed = run[0].time - Span::seconds(600);
    if let Event::SourceChanged(s) = &mut run[0].event {
        s.committed = Some(committed);
    }
    let deployed = run
        .iter()
        .rev()
        .find(|e| e.kind() == "deploy.succeeded")
        .unwrap()
        .time;
    publish(&publisher, &run).await;
    wait_for_events(&ledger, run.len() as u64).await;
    let got = counted(&r, |c| c.lead_times >= 1.0).await;
    let lead = (deployed - committed).num_milliseconds() as f64 / 1000.0;
    assert_eq!((got.lead_times, got.lead_time_sum), (1.0, lead));
    let page = dashboard_page(r.web, "/delivery?days=7").await;
    let shown = format!("class=\"lead-time\">{:.1} d<", lead / 86_400.0);
    assert!(page.contains(&shown), "{shown} on the page: {page}");
    r.stop().await;
    ledger.close().await;
}

/// One replica on a fresh SQLite ledger, a publisher, and the ledger to read.
async fn one_replica() -> (Replica, Publisher, Ledger, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = ferry_testkit::unique_namespace();
    let cfg = config(&ns, &format!("[ledger]\nurl = \"{url}\""));
    declare_history(&cfg).await;
    let r = replica(cfg.clone()).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    (r, publisher, ledger, dir)
}

/// The replica's counts once `done` holds (or after 10 s, for the asserts to say what).
async fn counted(r: &Replica, done: impl Fn(&Counts) -> bool) -> Counts {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = counts(&r.metrics().await);
        if done(&c) || tokio::time::Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

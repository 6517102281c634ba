//! The run ledger keeps every event of every run, once, whatever restarts around it: the
//! seven services run as processes (two hook-receiver replicas sharing one PostgreSQL
//! ledger) and each is restarted in the middle of a run, SIGTERM or SIGKILL, and
//! PostgreSQL itself goes away for three runs (a receiver restarting meanwhile). Runs
//! go on to production regardless, and afterwards the ledger holds exactly the events a
//! tap saw on the bus: none lost, none extra, none counted twice.
//!
//! Named `postgres_*`: it runs alone among the tests using PostgreSQL (nextest group
//! `postgres`), since it stops it.

mod common;

use common::gate::{Gate, WAIT, build_table, svn_web_project};
use common::procs::{Procs, RECEIVER, RECEIVER_2};
use ferry_ledger::{Ledger, LedgerUrl};
use ferry_testkit::{Tap, amqp_url, docker_hosts, harness_var, http_request, postgres};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const MANUAL_TOKEN: &str = "survival-manual-token-0123";

/// What goes wrong while a run is in flight.
#[derive(Clone, Copy)]
enum Fault {
    /// SIGKILL, as a crash would; started again a second later.
    Kill(&'static str),
    /// SIGTERM, as a deploy of Ferry would (in-flight work finishes or is requeued).
    Term(&'static str),
    /// PostgreSQL stopped (a fast shutdown: connections cut).
    DatabaseDown,
    /// PostgreSQL started again: the ledger catches up while runs go on.
    DatabaseUp,
}

/// One run per entry, one after another: its fault, once the run has published this
/// event (the service hit is then at work on the run, or about to be). PostgreSQL is
/// away from the fourth run to the seventh (and until both receivers failed to reach
/// it), during which the first receiver restarts without its ledger.
const SCHEDULE: [(&str, Fault); 10] = [
    ("source.changed", Fault::Kill("builder")),
    ("image.built", Fault::Term("pusher")),
    ("image.pushed", Fault::Kill("puller")),
    ("image.pulled.staging", Fault::DatabaseDown),
    ("deploy.succeeded.staging", Fault::Term(RECEIVER)),
    ("image.pulled.staging", Fault::Kill("rancher-updater")),
    ("deploy.succeeded.staging", Fault::DatabaseUp),
    ("deploy.succeeded.staging", Fault::Term("tester")),
    ("deploy.started.production", Fault::Kill("notifier")),
    ("image.built", Fault::Kill(RECEIVER_2)),
];

/// Where every run ends when nothing is wrong: sequential runs all go to production.
const END: &str = "test.passed.production";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_survives_restarts_of_every_service_and_the_database_with_nothing_lost_or_doubled()
 {
    let began = Instant::now();
    ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
    let g = Gate::new();
    let _containers = RemoveContainers(&g);
    // Under the harness's state directory: the services' logs outlive a failure.
    let dir = std::path::PathBuf::from(harness_var("FERRY_TEST_STATE"))
        .join("ledger-survival")
        .join(&g.ns);
    std::fs::create_dir_all(&dir).unwrap();
    let svn_url = svn_web_project(&dir, SCHEDULE.len() as u32);
    let ledger_url = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap()
        .unwrap();
    let mut procs = Procs::new(&dir, &config(&g, &svn_url, &ledger_url, &dir));
    procs.add_receiver_replica();
    declare_history(&procs).await;
    let seen = follow(Tap::new(&amqp_url(), &g.ns, "#").await.unwrap());
    procs.start_all().await;

    let drove = drive(&mut procs, &seen, &g.project).await;
    assert_eq!(
        procs.exited(),
        Vec::<String>::new(),
        "services exited by themselves"
    );
    assert_eq!(
        g.serving(g.production).await.as_deref(),
        Some(format!("r{}", SCHEDULE.len()).as_str()),
        "production does not serve the last run's revision"
    );
    // Anything still published (nothing should be) reaches the tap before counting.
    settle(&seen, Duration::from_secs(3)).await;
    let quiet = Instant::now();
    let (tapped, repeats) = {
        let s = seen.lock().unwrap();
        (s.events.clone(), s.repeats)
    };
    let ledger = Ledger::open(&LedgerUrl::parse(&ledger_url).unwrap())
        .await
        .unwrap();
    // The receivers record from the stream: give them time to get past the last event.
    let caught_up = ferry_testkit::wait_until(Duration::from_secs(60), || async {
        ledger.event_count().await.unwrap_or(0) >= tapped.len() as u64
    })
    .await;
    let caught_up_after = quiet.elapsed();
    procs.stop_all().await;
    assert!(
        caught_up,
        "the ledger did not get to the {} events the tap saw within 60 s (logs: {})",
        tapped.len(),
        dir.join("logs").display()
    );
    same_as_tapped(&ledger, &g.project, &tapped, &drove.runs).await;
    eprintln!(
        "ledger survival: {} runs to production, {} events ({repeats} delivered again), \
         services restarted {} times after SIGTERM and {} after SIGKILL, PostgreSQL down \
         {:.1} s ({} ledger writes failed meanwhile), the ledger complete {:.1} s after the \
         bus went quiet, {:.0} s in all",
        drove.runs.len(),
        tapped.len(),
        drove.terms,
        drove.kills,
        drove.database_down.as_secs_f64(),
        drove.failed_writes,
        caught_up_after.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    ledger.close().await;
}

/// What [`drive`] did.
struct Drove {
    runs: Vec<Uuid>,
    /// Services restarted after a SIGTERM, and after a SIGKILL.
    terms: usize,
    kills: usize,
    database_down: Duration,
    /// Ledger writes and openings that failed at the receivers during the outage.
    failed_writes: u64,
}

/// One run after another (so each goes all the way to production), each with its
/// fault from [`SCHEDULE`]; returns once the last run ended.
async fn drive(procs: &mut Procs, seen: &Record, project: &str) -> Drove {
    let mut drove = Drove {
        runs: Vec::new(),
        terms: 0,
        kills: 0,
        database_down: Duration::ZERO,
        failed_writes: 0,
    };
    let mut outage = None;
    for (i, (at, fault)) in SCHEDULE.into_iter().enumerate() {
        // The replicas take turns: both publish, and both record into the ledger.
        let via = [RECEIVER, RECEIVER_2][i % 2];
        let run = trigger(procs.hooks(via), project, i + 1).await;
        drove.runs.push(run);
        wait_for(seen, run, at).await;
        match fault {
            Fault::Kill(name) => {
                procs.kill(name).await;
                // The run's next event waits in the service's queue meanwhile.
                tokio::time::sleep(Duration::from_secs(1)).await;
                procs.start(name).await;
                drove.kills += 1;
            }
            Fault::Term(name) => {
                procs.stop(name).await;
                procs.start(name).await;
                drove.terms += 1;
            }
            Fault::DatabaseDown => outage = Some(Outage::begin().await),
            Fault::DatabaseUp => {
                // Held until both replicas failed to reach it (after the pool's 10 s
                // acquire timeout): the ledger is then filled again by a re-read of the
                // stream at one and by a retried opening at the other (restarted).
                let admin = [procs.admin(RECEIVER), procs.admin(RECEIVER_2)];
                let felt = ferry_testkit::wait_until(Duration::from_secs(40), || async {
                    ledger_errors(admin[0]).await > 0 && ledger_errors(admin[1]).await > 0
                })
                .await;
                drove.failed_writes = ledger_errors(admin[0]).await + ledger_errors(admin[1]).await;
                let outage = outage.take().expect("PostgreSQL is up already");
                drove.database_down = outage.end().await;
                assert!(
                    felt,
                    "a receiver did not notice PostgreSQL was down within 40 s"
                );
            }
        }
        wait_for(seen, run, END).await;
    }
    assert!(outage.is_none(), "the schedule leaves PostgreSQL down");
    drove
}

/// The ledger holds exactly the events the tap saw (by id), lists exactly these runs,
/// and counts each run's events once.
async fn same_as_tapped(
    ledger: &Ledger,
    project: &str,
    tapped: &HashMap<Uuid, (Uuid, String)>,
    runs: &[Uuid],
) {
    let rows = ledger.runs(project, 1000).await.unwrap();
    let mut recorded = HashMap::new();
    for row in &rows {
        for e in ledger.run_events(&row.run_id).await.unwrap() {
            recorded.insert(e.event_id, (Uuid::from(e.run_id), e.routing_key()));
        }
    }
    let lost: Vec<_> = tapped
        .iter()
        .filter(|(id, _)| !recorded.contains_key(*id))
        .collect();
    let extra: Vec<_> = recorded
        .iter()
        .filter(|(id, _)| !tapped.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "events the ledger lost: {lost:?}");
    assert!(
        extra.is_empty(),
        "events in the ledger the bus never carried: {extra:?}"
    );
    let total = ledger.event_count().await.unwrap();
    assert_eq!(total, tapped.len() as u64, "events in the whole ledger");

    let listed: HashSet<Uuid> = rows.iter().map(|r| r.run_id.parse().unwrap()).collect();
    assert_eq!(
        listed,
        runs.iter().copied().collect(),
        "the runs the ledger lists"
    );
    for row in &rows {
        let run: Uuid = row.run_id.parse().unwrap();
        let events = tapped.values().filter(|(r, _)| *r == run).count();
        assert_eq!(
            row.events, events as i64,
            "run {run}: its events, as the ledger counts them"
        );
    }
}

/// The project: an SVN web app built on the first Docker host, staging there and
/// production on the second, its `/healthz` checked in each; the ledger in PostgreSQL.
fn config(g: &Gate, svn_url: &str, ledger_url: &str, dir: &std::path::Path) -> String {
    let hosts = docker_hosts();
    let p = &g.project;
    format!(
        r#"
        [log]
        level = "info,lapin=warn"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        heartbeat_secs = 5
        connect_timeout_ms = 2000
        publish_timeout_ms = 4000
        reconnect_max_delay_ms = 1000
        retry_delays_ms = [500, 2000]
        max_attempts = 5
        [hooks]
        manual_token = "{MANUAL_TOKEN}"
        [ledger]
        url = "{ledger_url}"
        [registry]
        address = "{registry}"
        username = "{user}"
        password = "{pass}"
        [docker_hosts.h1]
        url = "{h1}"
        [docker_hosts.h2]
        url = "{h2}"
        [environments.staging]
        hosts = ["h1"]
        ports = [{s1}, {s2}]
        [environments.production]
        hosts = ["h2"]
        ports = [{p1}, {p2}]
        [projects.{p}]
        image = "survival/{ns}"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "{svn_url}", path = "/trunk/web" }}
        [projects.{p}.container]
        command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
        # Generous: the suite shares two cores with three Docker daemons.
        health_timeout_secs = 20
        stop_timeout_secs = 2
        [projects.{p}.tests]
        wait_until_healthy_secs = 10
        [[projects.{p}.tests.checks]]
        url = "/healthz"
        {build}
        "#,
        amqp = amqp_url(),
        ns = g.ns,
        registry = harness_var("FERRY_TEST_REGISTRY"),
        user = harness_var("FERRY_TEST_REGISTRY_USER"),
        pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        h1 = hosts[0],
        h2 = hosts[1],
        s1 = g.staging[0],
        s2 = g.staging[1],
        p1 = g.production[0],
        p2 = g.production[1],
        build = build_table(&dir.join("build")),
    )
}

/// The history stream the ledger is written from exists before anything is published
/// (each receiver declares it too, but only once its reader is connected).
async fn declare_history(procs: &Procs) {
    let conn = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .unwrap();
    ferry_shared::bus::Topology::history(&procs.config().broker)
        .declare(&conn.create_channel().await.unwrap())
        .await
        .unwrap();
    let _ = conn.close(200, "declared".into()).await;
}

/// Every distinct event the tap saw, by id: its run and routing key.
#[derive(Default)]
struct Seen {
    events: HashMap<Uuid, (Uuid, String)>,
    /// Deliveries of an id seen before (a stage redoing work after a restart).
    repeats: usize,
}

type Record = Arc<Mutex<Seen>>;

/// Record what the tap sees, in the background, for the rest of the test.
fn follow(mut tap: Tap) -> Record {
    let record = Record::default();
    let r = record.clone();
    tokio::spawn(async move {
        loop {
            if let Some(e) = tap.next(Duration::from_secs(1)).await {
                let mut s = r.lock().unwrap();
                let key = (Uuid::from(e.run_id), e.routing_key());
                if s.events.insert(e.event_id, key).is_some() {
                    s.repeats += 1;
                }
            }
        }
    });
    record
}

/// A receiver's `ferry_ledger_errors_total`: ledger writes and openings that failed.
async fn ledger_errors(admin: std::net::SocketAddr) -> u64 {
    let (status, text) = http_request(admin, "GET", "/metrics", &[], b"")
        .await
        .unwrap();
    assert_eq!(status, 200, "{admin}/metrics");
    // `ferry_ledger_errors_total{service="hook-receiver"} 3`
    let line = text
        .lines()
        .find(|l| l.starts_with("ferry_ledger_errors_total"));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no ferry_ledger_errors_total at {admin}/metrics:\n{text}"))
}

/// Wait until the tap saw nothing new for `quiet`.
async fn settle(seen: &Record, quiet: Duration) {
    let deliveries = || {
        let s = seen.lock().unwrap();
        s.events.len() + s.repeats
    };
    loop {
        let before = deliveries();
        tokio::time::sleep(quiet).await;
        if deliveries() == before {
            return;
        }
    }
}

/// Wait until `run` published `key`; fail with what the run did publish.
async fn wait_for(seen: &Record, run: Uuid, key: &str) {
    let has = || {
        seen.lock()
            .unwrap()
            .events
            .values()
            .any(|(r, k)| *r == run && k == key)
    };
    if !ferry_testkit::wait_until(WAIT, || async { has() }).await {
        let s = seen.lock().unwrap();
        let of_run: Vec<_> = s.events.values().filter(|(r, _)| *r == run).collect();
        panic!("run {run} did not publish {key} within {WAIT:?}; it published {of_run:?}");
    }
}

/// Start a run of revision `rev` through the manual hook; its run id.
async fn trigger(receiver: std::net::SocketAddr, project: &str, rev: usize) -> Uuid {
    let body = format!(r#"{{"project":"{project}","revision":"{rev}"}}"#);
    let auth = format!("Bearer {MANUAL_TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", &auth),
    ];
    let (status, reply) =
        http_request(receiver, "POST", "/hooks/manual", &headers, body.as_bytes())
            .await
            .unwrap();
    assert_eq!(status, 202, "the manual hook for revision {rev}: {reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    reply["run_ids"][0].as_str().unwrap().parse().unwrap()
}

/// PostgreSQL down; started again when the outage ends, or when the test fails during
/// it: other tests share the server.
struct Outage {
    since: Instant,
    over: bool,
}

impl Outage {
    async fn begin() -> Self {
        tokio::task::spawn_blocking(postgres::stop)
            .await
            .unwrap()
            .expect("stopping PostgreSQL");
        Self {
            since: Instant::now(),
            over: false,
        }
    }

    /// How long it was down.
    async fn end(mut self) -> Duration {
        tokio::task::spawn_blocking(postgres::start)
            .await
            .unwrap()
            .expect("starting PostgreSQL again");
        self.over = true;
        self.since.elapsed()
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.over {
            let _ = postgres::start();
        }
    }
}

/// The project's containers leave both Docker hosts however the test ends.
struct RemoveContainers<'a>(&'a Gate);

impl Drop for RemoveContainers<'_> {
    fn drop(&mut self) {
        self.0.cleanup();
    }
}

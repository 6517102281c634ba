//! Ferry's chaos suite. Runs the seven services as processes against the harness's real
//! components (`tests/chaos.sh` starts them), starts `CHAOS_RUNS` pipeline runs (an SVN
//! commit each, reported to `/hooks/svn` as the post-commit hook would, retried until the
//! 202 as the hook does) while a driver SIGKILLs a random service every few seconds and
//! restarts it, and restarts RabbitMQ `CHAOS_BROKER_RESTARTS` times. Then it lets the
//! pipeline settle and judges every accepted run (definitions in `verdict.rs`, printed
//! with the figures). Prints `bench: chaos_<figure> = <value> [unit]` lines.
//!
//! Exit status: 0 when the suite ran (whatever the counts: they are the result), 1 when
//! the harness itself failed (a component missing, a bad configuration, a broker that
//! does not come back).
//!
//! Knobs (environment): `CHAOS_RUNS` (50), `CHAOS_SEED` (random; printed, to replay the
//! same schedule), `CHAOS_TRIGGER_GAP_MS` (`1000-4000`), `CHAOS_KILL_GAP_MS`
//! (`1500-4000`), `CHAOS_KILL_PAUSE_MS` (`300-3000`), `CHAOS_BROKER_RESTARTS` (2),
//! `CHAOS_BROKER_DOWN` (`stop`, `kill` or `mixed`: how the node goes down; `stop`),
//! `CHAOS_SETTLE_SECS` (180), `CHAOS_KEEP` (1: leave the project's containers).
//!
//! `CHAOS_CLUSTER=1` runs the same against the harness's three-node RabbitMQ cluster
//! (`nodes.rs`) with two rancher-updaters: instead of restarting one broker, it inflicts
//! `CHAOS_CLUSTER_FAULTS` (`kill,partition,leader,restart`) spread over the runs, and
//! prints the figures as `cluster_chaos_<figure>`. Both modes also count concurrent
//! switches from the Docker hosts' own events (`switches.rs`) and the longest wait.

mod broker;
mod hosts;
mod nodes;
mod procs;
mod setup;
mod switches;
mod tap;
mod verdict;

use anyhow::{Context as _, bail};
use broker::Down;
use ferry_testkit::{docker_hosts, harness_var, http_request};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;
use verdict::Fate;

/// How long a trigger is retried (503 while RabbitMQ is away, refused while the
/// hook-receiver is down) before it counts as not accepted.
const TRIGGER_PATIENCE: Duration = Duration::from_secs(120);
/// Nothing new on the tap for this long, with every run terminal: settled.
const QUIET: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-chaos: harness failure: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The schedule's parameters.
struct Knobs {
    runs: usize,
    seed: u64,
    trigger_gap_ms: (u64, u64),
    kill_gap_ms: (u64, u64),
    kill_pause_ms: (u64, u64),
    broker_restarts: usize,
    broker_down: String,
    settle: Duration,
    keep: bool,
    /// Faults of the three-node cluster; `None` on the single broker.
    cluster: Option<Vec<nodes::Fault>>,
}

impl Knobs {
    fn from_env() -> anyhow::Result<Self> {
        fn num(name: &str, default: u64) -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().with_context(|| format!("{name}={v:?}")),
                Err(_) => Ok(default),
            }
        }
        fn range(name: &str, default: (u64, u64)) -> anyhow::Result<(u64, u64)> {
            let Ok(v) = std::env::var(name) else {
                return Ok(default);
            };
            let (a, b) = v.split_once('-').unwrap_or((&v, &v));
            let (a, b): (u64, u64) = (
                a.trim().parse().with_context(|| format!("{name}={v:?}"))?,
                b.trim().parse().with_context(|| format!("{name}={v:?}"))?,
            );
            anyhow::ensure!(a <= b, "{name}={v:?}: low-high");
            Ok((a, b))
        }
        let seed = match std::env::var("CHAOS_SEED") {
            Ok(v) => v
                .trim()
                .parse()
                .with_context(|| format!("CHAOS_SEED={v:?}"))?,
            Err(_) => Uuid::new_v4().as_u64_pair().0 % 1_000_000_000,
        };
        let broker_down = std::env::var("CHAOS_BROKER_DOWN").unwrap_or_else(|_| "stop".into());
        anyhow::ensure!(
            matches!(broker_down.as_str(), "stop" | "kill" | "mixed"),
            "CHAOS_BROKER_DOWN={broker_down:?}: stop, kill or mixed"
        );
        Ok(Self {
            runs: num("CHAOS_RUNS", 50)? as usize,
            seed,
            trigger_gap_ms: range("CHAOS_TRIGGER_GAP_MS", (1000, 4000))?,
            kill_gap_ms: range("CHAOS_KILL_GAP_MS", (1500, 4000))?,
            kill_pause_ms: range("CHAOS_KILL_PAUSE_MS", (300, 3000))?,
            broker_restarts: num("CHAOS_BROKER_RESTARTS", 2)? as usize,
            broker_down,
            settle: Duration::from_secs(num("CHAOS_SETTLE_SECS", 180)?),
            keep: std::env::var("CHAOS_KEEP").is_ok_and(|v| v == "1"),
            cluster: match std::env::var("CHAOS_CLUSTER").is_ok_and(|v| v == "1") {
                false => None,
                true => Some(nodes::Fault::parse_list(
                    &std::env::var("CHAOS_CLUSTER_FAULTS")
                        .unwrap_or_else(|_| "kill,partition,leader,restart".into()),
                )?),
            },
        })
    }

    fn down(&self, i: usize) -> Down {
        match self.broker_down.as_str() {
            "kill" => Down::Kill,
            "mixed" if i % 2 == 1 => Down::Kill,
            _ => Down::Stop,
        }
    }

    /// What the run does to RabbitMQ, in order, spread over the triggers.
    fn disruptions(&self, rng: &mut Rng) -> Vec<Disruption> {
        match &self.cluster {
            Some(faults) => faults
                .iter()
                .map(|f| Disruption::Node(*f, (rng.next() % 3) as usize))
                .collect(),
            None => (0..self.broker_restarts)
                .map(|i| Disruption::Broker(self.down(i)))
                .collect(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Disruption {
    /// The single broker restarted.
    Broker(Down),
    /// A cluster fault on a node.
    Node(nodes::Fault, usize),
}

impl Disruption {
    /// Inflict it and undo it: what happened, and how long the single broker was away.
    async fn run(
        self,
        log: PathBuf,
        namespace: String,
    ) -> anyhow::Result<(String, Option<Duration>)> {
        match self {
            Disruption::Broker(how) => {
                let down = broker::restart(how, Duration::from_secs(2), &log).await?;
                Ok((
                    format!(
                        "RabbitMQ restart ({how:?}): {:.1} s without a broker",
                        down.as_secs_f64()
                    ),
                    Some(down),
                ))
            }
            Disruption::Node(fault, node) => {
                Ok((nodes::inflict(fault, node, &namespace).await?, None))
            }
        }
    }
}

/// xorshift64*: enough randomness for a schedule, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, (lo, hi): (u64, u64)) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// A run the hook-receiver accepted (answered 202).
struct Accepted {
    n: usize,
    revision: u64,
    run_id: Uuid,
    /// Posts it took (1 = accepted at once).
    tries: u32,
}

/// What the driver started.
#[derive(Default)]
struct Triggers {
    accepted: Vec<Accepted>,
    /// Commits never accepted within [`TRIGGER_PATIENCE`].
    refused: Vec<(usize, u64, String)>,
}

async fn run() -> anyhow::Result<()> {
    let wall = Instant::now();
    let knobs = Knobs::from_env()?;
    let since_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() - 1;
    let broker = match knobs.cluster {
        Some(_) => {
            setup::Broker::Cluster(ferry_testkit::cluster::Cluster::from_harness().amqp_urls())
        }
        None => setup::Broker::Single(harness_var("FERRY_TEST_AMQP_URL")),
    };
    let urls = broker.urls();
    let url = urls[0].clone();
    // Figures of a cluster run are named apart from the single broker's.
    let fig = if knobs.cluster.is_some() {
        "cluster_chaos"
    } else {
        "chaos"
    };
    let setup = setup::prepare(&broker).await?;
    // Recorded as they happen: asked afterwards, a daemon replays only its last 256.
    let staging_log = hosts::record(&docker_hosts()[0], &setup.project, since_s)?;
    let production_log = hosts::record(&docker_hosts()[1], &setup.project, since_s)?;
    let logs = setup.dir.join("logs");
    println!(
        "chaos: namespace {}, project {}, {} runs, seed {}, state {}, broker {}",
        setup.namespace,
        setup.project,
        knobs.runs,
        knobs.seed,
        setup.dir.display(),
        if knobs.cluster.is_some() {
            "three-node cluster"
        } else {
            "one node"
        }
    );
    let cfg = ferry_shared::config::FerryConfig::load(&setup.config_path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if knobs.cluster.is_some() {
        nodes::import_definitions(&cfg.broker, &setup.dir)
            .await
            .context("importing Ferry's definitions into the cluster")?;
    }

    // The tap exists before anything is published.
    let (conn, _ch) = tap::declare(&url, &setup.namespace)
        .await
        .context("declaring the tap queue")?;
    let _ = conn.close(200, "declared".into()).await;
    let record = tap::Shared::default();
    let (feed, _) = tokio::sync::broadcast::channel(1024);
    record.lock().expect("record").feed = Some(feed.clone());
    let (stop_tap, tap_stopped) = tokio::sync::watch::channel(false);
    let tap_task = tokio::spawn(tap::follow(
        urls.clone(),
        setup.namespace.clone(),
        record.clone(),
        setup.dir.join("events.jsonl"),
        tap_stopped,
    ));

    let mut services = procs::Services::new(&setup.config_path, &logs)?;
    if knobs.cluster.is_some() {
        // Two updaters compete for each environment's deploy lock, as replicas on two
        // hosts would; the second one's admin endpoint is its own.
        services.add_instance(
            "rancher-updater-2",
            "rancher-updater",
            vec![(
                "FERRY__SERVICES__RANCHER_UPDATER__ADMIN_LISTEN".into(),
                format!("127.0.0.1:{}", ferry_testkit::free_port()),
            )],
        );
    }
    let instances = services.names();
    services.start_all()?;
    wait_ready(&setup.admin, Duration::from_secs(60)).await?;

    // --- chaos phase -------------------------------------------------------------------
    let chaos_t0 = Instant::now();
    let triggers = Arc::new(Mutex::new(Triggers::default()));
    let triggered = Arc::new(AtomicUsize::new(0));
    let driver = tokio::spawn(drive(
        setup.svn,
        setup.hooks,
        knobs.runs,
        knobs.trigger_gap_ms,
        knobs.seed ^ 0xD1,
        triggers.clone(),
        triggered.clone(),
    ));
    let mut rng = Rng::new(knobs.seed);
    let mut targeted = 0usize;
    // Kills that caught the service with a handler running (its `ferry_in_flight`).
    let mut in_flight_kills: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut kills: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexpected_exits = Vec::new();
    let planned = knobs.disruptions(&mut Rng::new(knobs.seed ^ 0xC1));
    // Disruptions done: what happened, and for a broker restart how long it was away.
    let mut disrupted: Vec<(Disruption, String, Option<Duration>)> = Vec::new();
    type Task = tokio::task::JoinHandle<anyhow::Result<(String, Option<Duration>)>>;
    let mut disrupting: Option<(Disruption, Task)> = None;
    let restart_log = logs.join("rabbit-restarts.log");
    loop {
        let done = triggered.load(Ordering::Relaxed);
        let driver_done = driver.is_finished();
        if let Some((what, task)) = disrupting.take_if(|(_, t)| t.is_finished()) {
            let (report, down) = task.await?.with_context(|| format!("{what:?}"))?;
            println!("chaos: disruption #{} done: {report}", disrupted.len() + 1);
            disrupted.push((what, report, down));
        }
        let started = disrupted.len() + usize::from(disrupting.is_some());
        if disrupting.is_none()
            && started < planned.len()
            && (driver_done || done * (planned.len() + 1) >= (started + 1) * knobs.runs)
        {
            let what = planned[started];
            println!(
                "chaos: {what:?} after {done} triggers, t = {:.0} s",
                chaos_t0.elapsed().as_secs_f64()
            );
            let (log, ns) = (restart_log.clone(), setup.namespace.clone());
            disrupting = Some((what, tokio::spawn(what.run(log, ns))));
        }
        if driver_done && disrupting.is_none() && disrupted.len() >= planned.len() {
            break;
        }
        tokio::time::sleep(rng.between(knobs.kill_gap_ms)).await;
        let svc = instances[(rng.next() % instances.len() as u64) as usize];
        let role = if svc == "rancher-updater-2" {
            "rancher-updater"
        } else {
            svc
        };
        // Every other kill waits for work of that service to arrive and kills it in the
        // middle of the handler; the others land wherever they land.
        if rng.next().is_multiple_of(2) && wait_for_work(&feed, role, Duration::from_secs(8)).await
        {
            tokio::time::sleep(rng.between(busy_window(role))).await;
            targeted += 1;
        }
        let admin = setup.admin.iter().find(|(s, _)| *s == svc).map(|(_, a)| *a);
        if let Some(admin) = admin
            && in_flight(admin).await > 0
        {
            *in_flight_kills.entry(svc).or_default() += 1;
        }
        services.kill(svc).await?;
        *kills.entry(svc).or_default() += 1;
        tokio::time::sleep(rng.between(knobs.kill_pause_ms)).await;
        services.start(svc)?;
        for (svc, status) in services.exited() {
            eprintln!("ferry-chaos: {svc} exited by itself ({status}); restarting it");
            unexpected_exits.push(format!("{svc}: {status}"));
            services.start(svc)?;
        }
    }
    driver.await?.context("the trigger driver")?;
    let chaos_s = chaos_t0.elapsed().as_secs_f64();
    let accepted_ids: Vec<Uuid> = triggers
        .lock()
        .expect("triggers")
        .accepted
        .iter()
        .map(|a| a.run_id)
        .collect();
    println!(
        "chaos: chaos phase over after {chaos_s:.0} s: {} runs accepted, {} kills; settling (at most {} s)",
        accepted_ids.len(),
        kills.values().sum::<usize>(),
        knobs.settle.as_secs()
    );

    // --- settle --------------------------------------------------------------------------
    let settle_t0 = Instant::now();
    let mut last_report = Instant::now();
    loop {
        for (svc, status) in services.exited() {
            eprintln!("ferry-chaos: {svc} exited by itself ({status}); restarting it");
            unexpected_exits.push(format!("{svc}: {status}"));
            services.start(svc)?;
        }
        let (open, quiet) = {
            let r = record.lock().expect("record");
            let open = accepted_ids
                .iter()
                .filter(|id| {
                    !r.runs
                        .get(id)
                        .is_some_and(|ev| ev.iter().any(verdict::is_terminal))
                })
                .count();
            (open, r.last_new.map(|t| t.elapsed()).unwrap_or(QUIET))
        };
        if open == 0 && quiet >= QUIET {
            break;
        }
        if settle_t0.elapsed() >= knobs.settle {
            println!("chaos: settle time over with {open} runs not terminal");
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            println!(
                "chaos: settling, {open} runs not terminal yet ({:.0} s)",
                settle_t0.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle_s = settle_t0.elapsed().as_secs_f64();

    // --- look: queues with the services stopped, the tap drained, the hosts -------------
    services.stop_all().await;
    let waiting = broker::waiting(&url, &broker::work_queues(&cfg.broker)).await?;
    let tap_queue = tap::queue(&setup.namespace);
    ferry_testkit::wait_until(Duration::from_secs(20), || {
        let (url, q) = (url.clone(), tap_queue.clone());
        async move {
            ferry_testkit::queue_len(&url, &q)
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tap.send(true);
    let _ = tap_task.await;
    let hosts = docker_hosts();
    let created = hosts::created(&production_log, verdict::PRODUCTION)?;
    let prod_running = hosts::running(&hosts[1], &setup.project, verdict::PRODUCTION).await?;
    let staging_running = hosts::running(&hosts[0], &setup.project, "staging").await?;
    // Two deploys switching one environment at once, as the hosts themselves saw it.
    let mut overlaps = switches::on_host(&staging_log)?;
    overlaps.extend(switches::on_host(&production_log)?);

    // What production serves, on either blue/green port.
    let mut serving = Vec::new();
    for port in setup.production_ports {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if let Ok((200, body)) = http_request(addr, "GET", "/", &[], b"").await {
            serving.push(body.trim().to_owned());
        }
    }

    // --- judge ---------------------------------------------------------------------------
    // The tap and the driver are done: their records are ours now.
    let record = std::mem::take(&mut *record.lock().expect("record"));
    let triggers = std::mem::take(&mut *triggers.lock().expect("triggers"));
    let mut fates: HashMap<Uuid, Fate> = HashMap::new();
    let mut duplicates = Vec::new();
    for a in &triggers.accepted {
        let events = record.runs.get(&a.run_id);
        fates.insert(a.run_id, verdict::fate(events, waiting.get(&a.run_id)));
        if let Some(why) = verdict::duplicate_deploy(events, created.get(&a.run_id)) {
            duplicates.push((a, why));
        }
    }
    let count = |f: fn(&Fate) -> bool| fates.values().filter(|x| f(x)).count();
    let lost = count(|f| matches!(f, Fate::Lost { .. }));
    let stuck = count(|f| matches!(f, Fate::Stuck(_)));
    let production = count(|f| matches!(f, Fate::Production));
    let unseen = triggers
        .accepted
        .iter()
        .filter(|a| !record.runs.contains_key(&a.run_id))
        .count();
    let accepted_set: std::collections::HashSet<Uuid> =
        triggers.accepted.iter().map(|a| a.run_id).collect();
    let unacknowledged: Vec<&Uuid> = record
        .runs
        .keys()
        .filter(|id| !accepted_set.contains(id))
        .collect();
    let redeploys = created.values().filter(|c| c.len() > 1).count();
    let retries: u32 = triggers.accepted.iter().map(|a| a.tries - 1).sum();
    // The longest a run went without progress: the largest gap between two of its events
    // (by their publish times), wherever the faults put it.
    let longest_wait = triggers
        .accepted
        .iter()
        .filter_map(|a| {
            let mut seen: Vec<&tap::Seen> = record.runs.get(&a.run_id)?.iter().collect();
            seen.sort_by_key(|s| s.time_ns);
            seen.windows(2)
                .map(|w| {
                    (
                        w[1].time_ns - w[0].time_ns,
                        a,
                        w[0].routing_key.clone(),
                        w[1].routing_key.clone(),
                    )
                })
                .max_by_key(|w| w.0)
        })
        .max_by_key(|w| w.0);
    let newest_in_prod = triggers
        .accepted
        .iter()
        .filter(|a| {
            record.runs.get(&a.run_id).is_some_and(|ev| {
                ev.iter()
                    .any(|s| s.routing_key == format!("deploy.succeeded.{}", verdict::PRODUCTION))
            })
        })
        // Newest by revision (what the updater orders by), not by run id: run ids
        // derived from a delivery carry no time.
        .max_by_key(|a| a.revision)
        .map(|a| a.run_id);

    println!(
        "chaos: definitions: terminal = test.passed.production, or *.failed, deploy.superseded.*, deploy.rolled_back.*, approval.rejected/expired.*;"
    );
    println!(
        "chaos:   lost = accepted (202) but not terminal and no message of the run left in any stage queue (main, retry, parked) with the services stopped;"
    );
    println!(
        "chaos:   stuck = not terminal but a message of the run still waits in a stage queue;"
    );
    println!(
        "chaos:   duplicate deploy = >1 distinct deploy.started/succeeded.production event ids for a run, or its production container created again after its deploy.succeeded.production"
    );
    for (a, why) in &duplicates {
        println!(
            "chaos: DUPLICATE run {} (r{}, #{}): {why}",
            a.run_id, a.revision, a.n
        );
    }
    for a in &triggers.accepted {
        match &fates[&a.run_id] {
            Fate::Lost { last } => println!(
                "chaos: LOST run {} (r{}, #{}): last event {}",
                a.run_id,
                a.revision,
                a.n,
                last.as_deref().unwrap_or("none (never seen on the tap)")
            ),
            Fate::Stuck(w) => println!(
                "chaos: STUCK run {} (r{}, #{}): waiting: {}",
                a.run_id,
                a.revision,
                a.n,
                w.join("; ")
            ),
            _ => {}
        }
        if matches!(fates[&a.run_id], Fate::Lost { .. } | Fate::Stuck(_)) {
            let keys: Vec<&str> = record
                .runs
                .get(&a.run_id)
                .map(|ev| ev.iter().map(|s| s.routing_key.as_str()).collect())
                .unwrap_or_default();
            println!("chaos:   events: {}", keys.join(" → "));
        }
    }
    for (n, rev, why) in &triggers.refused {
        println!("chaos: NOT ACCEPTED trigger #{n} (r{rev}): {why}");
    }
    for (end, n) in verdict::ends(&fates) {
        println!("chaos: ended with {end}: {n}");
    }
    println!(
        "chaos: kills by service: {}",
        kills
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "chaos: kills with a handler running: {}",
        in_flight_kills
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for e in &unexpected_exits {
        println!("chaos: unexpected exit: {e}");
    }
    if !unacknowledged.is_empty() {
        println!("chaos: runs on the bus that no trigger got a 202 for: {unacknowledged:?}");
    }
    // Production must run, and serve, the newest run that passed there: by the
    // container's label, and by the page (each run's commit writes `run <n>`).
    let serves_newest = match newest_in_prod {
        Some(id) if matches!(fates.get(&id), Some(Fate::Production)) => {
            let n = triggers
                .accepted
                .iter()
                .find(|a| a.run_id == id)
                .map(|a| a.n);
            Some(
                prod_running.len() == 1
                    && prod_running[0].1 == id.to_string()
                    && n.is_some_and(|n| serving == vec![format!("run {n}")]),
            )
        }
        _ => None,
    };
    println!("chaos: production serves {serving:?} (blue/green ports)");
    println!("chaos: running in production: {prod_running:?}; in staging: {staging_running:?}");
    println!("chaos: newest run deployed to production: {newest_in_prod:?}");

    println!("bench: {fig}_runs = {}", triggers.accepted.len());
    println!("bench: {fig}_lost = {lost}");
    println!("bench: {fig}_duplicate_deploys = {}", duplicates.len());
    println!("bench: {fig}_stuck = {stuck}");
    println!("bench: {fig}_reached_production = {production}");
    println!(
        "bench: {fig}_ended_otherwise = {}",
        fates.len() - production - lost - stuck
    );
    println!("bench: {fig}_unseen = {unseen}");
    println!("bench: {fig}_not_accepted = {}", triggers.refused.len());
    println!(
        "bench: {fig}_unacknowledged_runs = {}",
        unacknowledged.len()
    );
    println!("bench: {fig}_trigger_retries = {retries}");
    println!("bench: {fig}_kills = {}", kills.values().sum::<usize>());
    println!("bench: {fig}_kills_aimed = {targeted}");
    println!(
        "bench: {fig}_kills_in_flight = {}",
        in_flight_kills.values().sum::<usize>()
    );
    println!("bench: {fig}_unexpected_exits = {}", unexpected_exits.len());
    for (i, (_, report, _)) in disrupted.iter().enumerate() {
        println!("chaos: disruption #{}: {report}", i + 1);
    }
    for o in &overlaps {
        println!(
            "chaos: CONCURRENT SWITCH in {}: run {} created {} at {} while run {}'s switch (opened at {}) was not finished",
            o.env, o.intruder, o.container, o.at_ns, o.running, o.span_opened_ns
        );
    }
    if let Some((gap, a, from, to)) = &longest_wait {
        println!(
            "chaos: longest wait: run {} (r{}, #{}) between {from} and {to}",
            a.run_id, a.revision, a.n
        );
        println!("bench: {fig}_longest_wait_s = {:.1} s", *gap as f64 / 1e9);
    }
    println!("bench: {fig}_concurrent_switches = {}", overlaps.len());
    if knobs.cluster.is_some() {
        println!("bench: {fig}_node_faults = {}", disrupted.len());
    } else {
        println!("bench: {fig}_broker_restarts = {}", disrupted.len());
        println!(
            "bench: {fig}_broker_down_s = {:.1} s",
            disrupted
                .iter()
                .filter_map(|(_, _, d)| d.map(|d| d.as_secs_f64()))
                .sum::<f64>()
        );
    }
    println!("bench: {fig}_redelivered_events = {}", record.repeats);
    println!("bench: {fig}_prod_redeploy_attempts = {redeploys}");
    println!(
        "bench: {fig}_prod_running_containers = {}",
        prod_running.len()
    );
    println!(
        "bench: {fig}_staging_running_containers = {}",
        staging_running.len()
    );
    // One container serves an environment; more is one a deploy failed to retire.
    println!(
        "bench: {fig}_leaked_containers = {}",
        prod_running.len().saturating_sub(1) + staging_running.len().saturating_sub(1)
    );
    if let Some(ok) = serves_newest {
        println!("bench: {fig}_prod_serves_newest = {}", u8::from(ok));
    }
    println!("bench: {fig}_phase_s = {chaos_s:.0} s");
    println!("bench: {fig}_settle_s = {settle_s:.0} s");
    println!(
        "bench: {fig}_wall_s = {:.0} s",
        wall.elapsed().as_secs_f64()
    );

    if !knobs.keep {
        for h in &hosts[..2] {
            hosts::remove_all(h, &setup.project).await;
        }
    }
    Ok(())
}

/// Start the runs: commit, then post the commit until the hook-receiver accepts it.
async fn drive(
    svn: setup::SvnRepo,
    hooks: std::net::SocketAddr,
    runs: usize,
    gap: (u64, u64),
    seed: u64,
    triggers: Arc<Mutex<Triggers>>,
    triggered: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    for n in 1..=runs {
        tokio::time::sleep(rng.between(gap)).await;
        let (revision, body) = svn.commit(n).await?;
        match accept(hooks, &body).await? {
            Ok((run_id, tries)) => triggers.lock().expect("triggers").accepted.push(Accepted {
                n,
                revision,
                run_id,
                tries,
            }),
            Err(why) => triggers
                .lock()
                .expect("triggers")
                .refused
                .push((n, revision, why)),
        }
        triggered.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Post until a 2xx with the run id. The outer error is a harness bug (a request the
/// receiver refuses as malformed); the inner one, a trigger never accepted in time.
async fn accept(
    hooks: std::net::SocketAddr,
    body: &[u8],
) -> anyhow::Result<Result<(Uuid, u32), String>> {
    let auth = format!("Bearer {}", setup::SVN_TOKEN);
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let deadline = Instant::now() + TRIGGER_PATIENCE;
    let mut tries = 0;
    let mut last = String::new();
    while Instant::now() < deadline {
        tries += 1;
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            http_request(hooks, "POST", "/hooks/svn", &headers, body),
        )
        .await;
        match answer {
            Ok(Ok((status, text))) if (200..300).contains(&status) => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("the hook's answer is not JSON: {text}"))?;
                let id = v["run_ids"][0]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .with_context(|| format!("no run id in the hook's answer: {text}"))?;
                return Ok(Ok((id, tries)));
            }
            Ok(Ok((status, text))) if status == 503 || status >= 500 => {
                last = format!("{status} {text}")
            }
            Ok(Ok((status, text))) => bail!("the hook-receiver refused a commit: {status} {text}"),
            Ok(Err(e)) => last = format!("{e}"),
            Err(_) => last = "no answer within 15 s".into(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Err(format!(
        "not accepted after {tries} posts; last: {last}"
    )))
}

/// Wait until an event that `svc` consumes is published (so the service has work in
/// hand); false after `timeout` or for a service that consumes nothing.
async fn wait_for_work(
    feed: &tokio::sync::broadcast::Sender<String>,
    svc: &str,
    timeout: Duration,
) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    if svc == "hook-receiver" {
        return false;
    }
    let mut rx = feed.subscribe();
    let found = async {
        loop {
            match rx.recv().await {
                Ok(key) if procs::consumes(svc, &key) => return true,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(timeout, found).await.unwrap_or(false)
}

/// How long after its input is published a service is typically still handling it on
/// this kind of machine (a build takes a second, a pull of a present image 30 ms): an
/// aimed kill waits a random time within it.
fn busy_window(svc: &str) -> (u64, u64) {
    match svc {
        "builder" => (50, 900),
        "pusher" => (0, 250),
        "rancher-updater" => (0, 250),
        _ => (0, 40),
    }
}

/// The service's `ferry_in_flight` gauge (0 when it cannot be read).
async fn in_flight(admin: std::net::SocketAddr) -> i64 {
    let Ok(Ok((200, text))) = tokio::time::timeout(
        Duration::from_millis(300),
        http_request(admin, "GET", "/metrics", &[], b""),
    )
    .await
    else {
        return 0;
    };
    text.lines()
        .find(|l| l.starts_with("ferry_in_flight{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Every service answers `/readyz` with 200 (connected to RabbitMQ).
async fn wait_ready(
    admin: &[(&'static str, std::net::SocketAddr)],
    timeout: Duration,
) -> anyhow::Result<()> {
    for (svc, addr) in admin {
        let ready = ferry_testkit::wait_until(timeout, || async {
            matches!(
                http_request(*addr, "GET", "/readyz", &[], b"").await,
                Ok((200, _))
            )
        })
        .await;
        anyhow::ensure!(
            ready,
            "{svc} did not get ready within {timeout:?} (see its log)"
        );
    }
    Ok(())
}

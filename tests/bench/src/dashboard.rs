//! The dashboard with a full memory: 10,000 runs (`BENCH_DASHBOARD_RUNS`) of five
//! projects through staging and production, written into a fresh SQLite ledger, read
//! back at start-up by the real hook-receiver (the release binary, its own process);
//! then, signed in, `GET /runs` (plain, with some filtered lists mixed in) and
//! `GET /runs/<id>` of random runs (its test reports and build log come from the
//! ledger), 1,000 each (`BENCH_DASHBOARD_REQUESTS`), one request at a time on one
//! keep-alive connection, and the process's memory afterwards. Each run's build log is
//! 4 KiB (`BENCH_DASHBOARD_BUILD_LOG_BYTES`). On stderr: how long the receiver took to
//! list every run and its memory then, and the plain and filtered lists apart.

use anyhow::Context;
use chrono::{DateTime, Utc};
use ferry_ledger::{Ledger, LedgerUrl};
use ferry_shared::event::{
    CheckResult, DeployRolledBack, DeployStarted, DeploySucceeded, Envelope, Event, HostTiming,
    ImageBuilt, ImagePulled, ImagePushed, SourceChanged, StageFailed, TestFailure, TestReport,
};
use ferry_testkit::{amqp_url, free_port, unique_namespace};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROJECTS: [&str; 5] = ["shop", "books", "billing", "search", "accounts"];
const AUTHORS: [&str; 6] = ["zoe", "li.wei", "marta", "sam", "ahmed", "chen.jing"];
const SUBJECTS: [&str; 6] = [
    "Fix the cart total when a discount code expires",
    "Add pagination to the order history",
    "Bump the PDF library to 2.4.1",
    "Cache the category tree for five minutes",
    "Log the payment provider's request id",
    "Remove the old checkout flow",
];
const TOKEN: &str = "bench-dashboard-operator-token-01";
/// Requests before the measured ones, of both pages.
const WARM_UP: usize = 50;
/// Of the measured `GET /runs`, every fifth is one of these filtered lists.
const FILTERED: [&str; 5] = [
    "/runs?status=failed",
    "/runs?project=billing&skip=50",
    "/runs?environment=production&status=succeeded",
    "/runs?q=cart",
    "/runs?project=shop&status=failed&skip=100",
];
/// Tasks recording into the ledger at once.
const WRITERS: usize = 4;

pub struct Figures {
    pub runs_p50_ms: f64,
    pub runs_p99_ms: f64,
    pub run_p50_ms: f64,
    pub run_p99_ms: f64,
    /// `GET /delivery?days=365`, the first: the four delivery figures of every project,
    /// computed from a year of the ledger.
    pub delivery_cold_ms: f64,
    /// The next ones, from the figures the page keeps for 30 s.
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub rss_mb: f64,
}

/// The receiver's process: killed however the bench ends.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn dashboard() -> anyhow::Result<Figures> {
    let runs = crate::env_or("BENCH_DASHBOARD_RUNS", 10_000).max(100);
    let requests = crate::env_or("BENCH_DASHBOARD_REQUESTS", 1_000).max(10);
    let log_bytes = crate::env_or("BENCH_DASHBOARD_BUILD_LOG_BYTES", 4_096);
    let dir = tempfile::Builder::new()
        .prefix("ferry-dashboard.")
        .tempdir()?;
    let db = dir.path().join("ledger.db");

    let t0 = Instant::now();
    let (ids, events) = seed(&db, runs, log_bytes).await?;
    eprintln!(
        "dashboard: {runs} runs, {events} events recorded into {} in {:.1} s ({} MB)",
        db.display(),
        t0.elapsed().as_secs_f64(),
        file_mb(&db)
    );

    let (api, admin) = (free_port(), free_port());
    let projects: String = PROJECTS
        .iter()
        .map(|p| {
            format!(
                "[projects.{p}]\nimage = \"{p}/web\"\nenvironments = [\"staging\", \"production\"]\n\
                 source = {{ kind = \"svn\", url = \"svn://127.0.0.1/{p}\" }}\n"
            )
        })
        .collect();
    let config = format!(
        r#"[broker]
url = "{amqp}"
namespace = "{ns}"
[services.hook_receiver]
listen = "127.0.0.1:{api}"
admin_listen = "127.0.0.1:{admin}"
[environments.staging]
[environments.production]
{projects}
[operators.bench]
token = "{TOKEN}"
can = ["view", "approve", "rollback", "deploy"]
[ledger]
url = "sqlite://{db}"
"#,
        amqp = amqp_url(),
        ns = unique_namespace(),
        db = db.display(),
    );
    let config_path = dir.path().join("ferry.toml");
    std::fs::write(&config_path, config)?;
    let bin = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .join("hook-receiver");
    // Its log outlives the temporary directory: in the harness's state when there is one.
    let log_path = std::env::var("FERRY_TEST_STATE")
        .map(|s| Path::new(&s).join("logs"))
        .unwrap_or_else(|_| dir.path().to_owned())
        .join("dashboard-hook-receiver.log");
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::File::create(&log_path)?;
    let started = Instant::now();
    let child = Receiver(
        Command::new(&bin)
            .env("FERRY_CONFIG", &config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("starting {} (bench.sh builds the services)", bin.display())
            })?,
    );
    let pid = child.0.id();

    let web = Web {
        base: format!("http://127.0.0.1:{api}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        cookie: String::new(),
    };
    let web = web.signed_in(started).await.with_context(|| {
        format!(
            "the hook-receiver did not let the bench sign in: see {}",
            log_path.display()
        )
    })?;
    // Loaded: the oldest page full (every run in memory) and no run still going (the
    // newest run's last event, the last one read, is in).
    let oldest = format!(
        "/runs?skip={}",
        runs.min(hook_receiver::runs::KEPT_RUNS) - 50
    );
    loop {
        let full = rows(&web.get(&oldest).await?.1) == 50;
        if full && rows(&web.get("/runs?status=running").await?.1) == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the dashboard did not list the {runs} runs of the ledger within 120 s: see {}",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "dashboard: every run listed {:.1} s after the start; RSS {:.1} MB",
        started.elapsed().as_secs_f64(),
        crate::e2e::rss_mb(pid)
    );

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let run_path = |rng: &mut XorShift| format!("/runs/{}", ids[rng.below(ids.len())]);
    for i in 0..WARM_UP {
        web.get(&run_path(&mut rng)).await?;
        web.get(if i % 5 == 4 {
            FILTERED[i / 5 % FILTERED.len()]
        } else {
            "/runs"
        })
        .await?;
    }

    let (mut plain, mut filtered) = (Vec::new(), Vec::new());
    for i in 0..requests {
        let path = if i % 5 == 4 {
            FILTERED[i / 5 % FILTERED.len()]
        } else {
            "/runs"
        };
        let (took, page) = web.get(path).await?;
        anyhow::ensure!(
            path != "/runs" || rows(&page) == 50,
            "GET /runs showed {} runs, not 50",
            rows(&page)
        );
        if path == "/runs" {
            plain.push(took);
        } else {
            filtered.push(took);
        }
    }
    let mut one = Vec::with_capacity(requests);
    for _ in 0..requests {
        let path = run_path(&mut rng);
        let (took, page) = web.get(&path).await?;
        anyhow::ensure!(
            page.contains("id=\"build-log") && page.contains("class=\"report\""),
            "{path} showed no build log or test report from the ledger"
        );
        one.push(took);
    }
    let mut delivery = Vec::new();
    for _ in 0..(requests / 10).max(10) {
        let (took, page) = web.get("/delivery?days=365").await?;
        anyhow::ensure!(
            page.contains("class=\"card delivery\""),
            "GET /delivery showed no project's figures"
        );
        delivery.push(took);
    }
    let rss_mb = crate::e2e::rss_mb(pid);
    drop(child);

    let (p50, p99) = percentiles(plain.clone());
    eprintln!("dashboard: GET /runs unfiltered p50 {p50:.1} ms, p99 {p99:.1} ms");
    let (p50, p99) = percentiles(filtered.clone());
    eprintln!("dashboard: GET /runs filtered p50 {p50:.1} ms, p99 {p99:.1} ms");
    let (runs_p50_ms, runs_p99_ms) = percentiles([plain, filtered].concat());
    let (run_p50_ms, run_p99_ms) = percentiles(one);
    let delivery_cold_ms = delivery[0].as_secs_f64() * 1000.0;
    let (delivery_p50_ms, delivery_p99_ms) = percentiles(delivery[1..].to_vec());
    Ok(Figures {
        delivery_cold_ms,
        delivery_p50_ms,
        delivery_p99_ms,
        runs_p50_ms,
        runs_p99_ms,
        run_p50_ms,
        run_p99_ms,
        rss_mb,
    })
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

fn file_mb(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() >> 20)
}

/// The runs a list page shows.
fn rows(page: &str) -> usize {
    page.matches("<tr class=\"run\"").count()
}

struct Web {
    base: String,
    http: reqwest::Client,
    /// `ferry_session=...`
    cookie: String,
}

impl Web {
    /// Signed in, as soon as the receiver answers.
    async fn signed_in(mut self, started: Instant) -> anyhow::Result<Self> {
        loop {
            let sent = self
                .http
                .post(format!("{}/login", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={TOKEN}&next=%2Fruns"))
                .send()
                .await;
            match sent {
                Ok(r) => {
                    anyhow::ensure!(r.status() == 303, "sign-in answered {}", r.status());
                    let set = r
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find(|c| c.starts_with("ferry_session="))
                        .context("no session cookie")?;
                    self.cookie = set.split(';').next().unwrap_or(set).to_owned();
                    return Ok(self);
                }
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    return Err(e).context("no answer within 30 s");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A page (200, body read whole), and how long that took.
    async fn get(&self, path: &str) -> anyhow::Result<(Duration, String)> {
        let t0 = Instant::now();
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        let took = t0.elapsed();
        anyhow::ensure!(status == 200, "GET {path} answered {status}");
        Ok((took, body))
    }
}

/// Deterministic picks, so that two runs of the bench ask for the same pages.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `runs` runs into a new ledger at `db`, the newest ten minutes apart and ending now:
/// their ids (oldest first) and the number of events.
async fn seed(db: &Path, runs: usize, log_bytes: usize) -> anyhow::Result<(Vec<Uuid>, usize)> {
    let url =
        LedgerUrl::parse(&format!("sqlite://{}", db.display())).map_err(anyhow::Error::msg)?;
    let ledger = Arc::new(Ledger::open(&url).await?);
    let start = Utc::now() - chrono::Duration::minutes(10 * runs as i64);
    let all: Vec<Vec<Envelope>> = (0..runs)
        .map(|i| {
            a_run(
                i,
                start + chrono::Duration::minutes(10 * i as i64),
                log_bytes,
            )
        })
        .collect();
    let ids: Vec<Uuid> = all.iter().map(|r| r[0].run_id.into()).collect();
    let events = all.iter().map(Vec::len).sum();
    // Each writer records whole runs, in order; the ledger keeps one writer at a time.
    let all = Arc::new(all);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (ledger, all) = (ledger.clone(), all.clone());
        writers.push(tokio::spawn(async move {
            for run in all.iter().skip(w).step_by(WRITERS) {
                for e in run {
                    ledger.record(e, None).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    anyhow::ensure!(
        ledger.event_count().await? == events as u64,
        "events missing from the ledger"
    );
    ledger.close().await;
    Ok((ids, events))
}

/// Run `i`, started at `at`, as the stages publish it: commit, build (its log
/// `log_bytes` long), push, then pull, deploy and test in staging and production. Every
/// tenth run fails its tests in staging and every tenth in production, and is rolled
/// back there.
fn a_run(i: usize, at: DateTime<Utc>, log_bytes: usize) -> Vec<Envelope> {
    let project = PROJECTS[i % PROJECTS.len()];
    let revision = (1_000 + i).to_string();
    let author = AUTHORS[i % AUTHORS.len()];
    let subject = SUBJECTS[i / PROJECTS.len() % SUBJECTS.len()];
    let mut source = Envelope::new_run(
        project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: format!("svn://svn.example.com/{project}"),
            reference: None,
            revision: revision.clone(),
            author: Some(author.into()),
            message: Some(format!(
                "{subject}\n\nThe old behaviour surprised people at the till; see ticket {}.",
                4_000 + i
            )),
            changed_paths: vec![
                format!("/trunk/{project}/src/Cart.php"),
                format!("/trunk/{project}/tests/CartTest.php"),
            ],
            config_change: None,
            committed: None,
        }),
    );
    source.time = at;
    let run_hex = Uuid::from(source.run_id).simple().to_string();
    let registry = "registry.example.com:5000";
    let image = format!("{registry}/{project}/web:r{revision}@sha256:{run_hex}{run_hex}");
    let previous = format!("{registry}/{project}/web:r{}", 995 + i);
    let at_s = |s: i64| at + chrono::Duration::milliseconds(s * 1_000 + (i % 997) as i64);
    let mut out = vec![source];
    let mut next = |event: Event, env: Option<&str>, secs: i64| {
        let before = out.last().expect("the source event");
        let mut e = before.follow(event, env);
        e.time = at_s(secs);
        out.push(e.clone());
        e
    };
    next(
        Event::ImageBuilt(ImageBuilt {
            revision: revision.clone(),
            image: image.clone(),
            config_commit: Some(format!("{:07x}", i * 7_919)),
            build_log: Some(build_log(project, &revision, log_bytes)),
            docker_millis: Some(38_000 + (i % 13) as u64 * 500),
            build_host: Some("build-1".into()),
        }),
        None,
        45,
    );
    next(
        Event::ImagePushed(ImagePushed {
            revision: revision.clone(),
            image: image.clone(),
            docker_millis: Some(5_200),
        }),
        None,
        52,
    );
    let failing = match i % 10 {
        3 => Some("staging"),
        7 => Some("production"),
        _ => None,
    };
    for (env, hosts, t) in [
        ("staging", &["stage-1"][..], 58),
        ("production", &["prod-1", "prod-2"][..], 75),
    ] {
        let timings = |millis: u64| -> Vec<HostTiming> {
            hosts
                .iter()
                .map(|h| HostTiming {
                    host: (*h).into(),
                    millis,
                    outcome: Default::default(),
                    endpoint: None,
                })
                .collect()
        };
        next(
            Event::ImagePulled(ImagePulled {
                revision: revision.clone(),
                image: image.clone(),
                hosts: timings(2_400),
            }),
            Some(env),
            t,
        );
        next(
            Event::DeployStarted(DeployStarted {
                revision: revision.clone(),
                image: image.clone(),
                previous_image: Some(previous.clone()),
                rollback: false,
            }),
            Some(env),
            t + 1,
        );
        let deployed = next(
            Event::DeploySucceeded(DeploySucceeded {
                revision: revision.clone(),
                image: image.clone(),
                previous_image: Some(previous.clone()),
                hosts: timings(3_100),
            }),
            Some(env),
            t + 5,
        );
        let fails = failing == Some(env);
        let report = TestReport {
            revision: revision.clone(),
            image: image.clone(),
            previous_image: Some(previous.clone()),
            checks: ["GET /healthz", "GET /", "GET /cart"]
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let failed = fails && n == 2;
                    CheckResult {
                        name: (*name).into(),
                        passed: !failed,
                        millis: 4 + n as u64 * 7,
                        detail: failed.then(|| "expected status 200, got 500".into()),
                    }
                })
                .collect(),
            output: None,
            millis: 180,
        };
        if !fails {
            next(Event::TestPassed(report), Some(env), t + 10);
            continue;
        }
        next(
            Event::TestFailed(TestFailure {
                failure: StageFailed {
                    service: "tester".into(),
                    reason: "1 of 3 checks failed: GET /cart: expected status 200, got 500".into(),
                    attempts: 1,
                    failed_event_id: deployed.event_id,
                    failed_kind: "deploy.succeeded".into(),
                },
                report: Some(report),
            }),
            Some(env),
            t + 10,
        );
        next(
            Event::DeployRolledBack(DeployRolledBack {
                revision: (995 + i).to_string(),
                image: previous.clone(),
                from_revision: Some(revision.clone()),
                from_image: Some(image.clone()),
                reason: "the tests failed".into(),
                hosts: timings(2_900),
            }),
            Some(env),
            t + 15,
        );
        break;
    }
    out
}

/// A Docker build's output, about `bytes` long.
fn build_log(project: &str, revision: &str, bytes: usize) -> String {
    let mut log = format!(
        "Step 1/9 : FROM registry.example.com:5000/base/php:8.3-fpm\n ---> 3f2a9c41d0b7\n\
         Step 2/9 : ARG FERRY_REVISION={revision}\n ---> Running in 5c1e0a7f2b33\n\
         Step 3/9 : COPY composer.json composer.lock /srv/{project}/\n ---> 9b0d4e1c7a25\n"
    );
    let mut n = 0;
    while log.len() < bytes {
        n += 1;
        log.push_str(&format!(
            "  - Installing vendor/package-{n:03} (v{}.{}.{}): Extracting archive\n",
            n % 7,
            n % 11,
            n % 5
        ));
    }
    log.push_str(&format!(
        "Successfully built 7d3f0c2e9a1b\nSuccessfully tagged {project}/web:r{revision}\n"
    ));
    log
}

//! A load generator for tests that switch traffic under load (blue/green, canaries, proxy
//! reloads): `concurrency` loops each sending HTTP/1.1 GETs to one address without pause,
//! a new connection per request (see [`crate::http_request`]), counting what came back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures kept as [`Sample`]s (the first ones).
pub const MAX_SAMPLES: usize = 20;

/// One failed request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the request finished (failed), since the load started.
    pub at: Duration,
    /// What failed: `HTTP <status>`, `timeout after 10s`, or the connection error.
    pub what: String,
    /// The first line of the response body, when there was a response.
    pub body: Option<String>,
}

/// What a [`Load`] saw. Every request sent finished as `ok` or `failed`
/// (`sent == ok + failed` after [`Load::stop`]).
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: u64,
    /// 2xx responses.
    pub ok: u64,
    /// Everything else: connection refused or reset, timeout, a status other than 2xx.
    pub failed: u64,
    /// The first [`MAX_SAMPLES`] failures.
    pub samples: Vec<Sample>,
    /// How often each distinct first line of a response body was seen (every response,
    /// whatever its status; `""` for an empty body).
    pub bodies: BTreeMap<String, u64>,
    /// Every failure, when it happened: to set one load's failures against another's.
    pub failures: Failures,
}

/// One failed request: when it finished, and the first line of its body when there was
/// a response.
#[derive(Clone, Debug)]
pub struct Failure {
    pub at: Instant,
    pub body: Option<String>,
}

/// Every failure of a load; printed as a count and a span, not one by one.
#[derive(Clone, Default)]
pub struct Failures(pub Vec<Failure>);

impl std::fmt::Debug for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let times = || self.0.iter().map(|x| x.at);
        match (times().min(), times().max()) {
            (Some(first), Some(last)) => {
                write!(f, "{} over {:?}", self.0.len(), last.duration_since(first))
            }
            _ => write!(f, "none"),
        }
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    samples: Mutex<Vec<Sample>>,
    bodies: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<Failure>>,
}

impl Counters {
    fn report(&self) -> LoadReport {
        LoadReport {
            sent: self.sent.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            samples: self.samples.lock().expect("samples lock").clone(),
            bodies: self.bodies.lock().expect("bodies lock").clone(),
            failures: Failures(self.failures.lock().expect("failures lock").clone()),
        }
    }
}

/// A running load; stop it with [`Load::stop`]. It also stops by itself once `max_duration`
/// has passed, or when dropped (after the requests in flight).
pub struct Load {
    stopped: Arc<AtomicBool>,
    counters: Arc<Counters>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Start `concurrency` request loops of `GET <path>` to `addr` (tests pass loopback
    /// addresses). Must be called inside a tokio runtime.
    pub fn start(addr: SocketAddr, path: &str, concurrency: usize, max_duration: Duration) -> Load {
        let stopped = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let start = Instant::now();
        let tasks = (0..concurrency)
            .map(|_| {
                let (stopped, counters, path) =
                    (stopped.clone(), counters.clone(), path.to_owned());
                tokio::spawn(async move {
                    while !stopped.load(Ordering::Relaxed) && start.elapsed() < max_duration {
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                        let result = tokio::time::timeout(
                            REQUEST_TIMEOUT,
                            crate::http_request(addr, "GET", &path, &[], b""),
                        )
                        .await;
                        let (failure, body) = match result {
                            Ok(Ok((status, body))) => {
                                let first = body.lines().next().unwrap_or_default().to_owned();
                                *counters
                                    .bodies
                                    .lock()
                                    .expect("bodies lock")
                                    .entry(first.clone())
                                    .or_default() += 1;
                                if (200..300).contains(&status) {
                                    (None, None)
                                } else {
                                    (Some(format!("HTTP {status}")), Some(first))
                                }
                            }
                            Ok(Err(e)) => (Some(format!("{e:#}")), None),
                            Err(_) => (Some(format!("timeout after {REQUEST_TIMEOUT:?}")), None),
                        };
                        match failure {
                            None => {
                                counters.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(what) => {
                                counters.failed.fetch_add(1, Ordering::Relaxed);
                                counters
                                    .failures
                                    .lock()
                                    .expect("failures lock")
                                    .push(Failure {
                                        at: Instant::now(),
                                        body: body.clone(),
                                    });
                                let mut samples = counters.samples.lock().expect("samples lock");
                                if samples.len() < MAX_SAMPLES {
                                    samples.push(Sample {
                                        at: start.elapsed(),
                                        what,
                                        body,
                                    });
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stopped,
            counters,
            tasks,
        }
    }

    /// The counts so far, while the load goes on (requests in flight are in `sent` only).
    pub fn snapshot(&self) -> LoadReport {
        self.counters.report()
    }

    /// Stop sending, wait for the requests in flight (at most [`REQUEST_TIMEOUT`]) and
    /// report.
    pub async fn stop(mut self) -> LoadReport {
        self.stopped.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                panic!("a load task failed: {e}");
            }
        }
        self.counters.report()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

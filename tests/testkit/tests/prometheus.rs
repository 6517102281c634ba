//! A real Prometheus ([`ferry_testkit::Prometheus`]) scraping a real HAProxy 2.6 (the
//! host's `/usr/sbin/haproxy`, built with its Prometheus exporter, PROMEX) answers the
//! canary queries Ferry will send: the share of 5xx responses of the canary's servers,
//! from `haproxy_server_http_responses_total{proxy, server, code}` (`code` is one of
//! `1xx` .. `5xx` and `other`).
//!
//! HAProxy runs as a plain process with the servers of one backend pointing at tiny
//! in-process web servers.

use ferry_testkit::{Prometheus, ScrapeJob, free_port, http_request, wait_until};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BACKEND: &str = "be_shop_production";

/// The canary query: the share of the canary servers' (`r<n>-9002`) responses that were
/// 5xx over the last 30s.
const CANARY_ERROR_RATIO: &str = r#"sum(rate(haproxy_server_http_responses_total{proxy="be_shop_production",server=~"r.*-9002",code="5xx"}[30s])) / sum(rate(haproxy_server_http_responses_total{proxy="be_shop_production",server=~"r.*-9002"}[30s]))"#;

/// HAProxy with a frontend `fe_shop` to [`BACKEND`] (round robin over `servers`) and the
/// exporter on its own frontend. Killed when dropped. Balancing and retries as in the
/// configuration Ferry renders (shared/targets' proxy): a refused connection is retried on
/// another server, a status code never is.
struct Haproxy {
    child: Child,
    /// The exporter's address (path /metrics).
    metrics: SocketAddr,
    /// `fe_shop`'s address.
    shop: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    async fn start(servers: &[(&str, SocketAddr)]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let shop: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut config = format!(
            "global\n    nbthread 1\n\
             defaults\n    mode http\n    balance roundrobin\n    retries 3\n    option redispatch 1\n\
             \x20   retry-on conn-failure empty-response\n\
             \x20   timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             frontend fe_metrics\n    bind {metrics}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n\
             frontend fe_shop\n    bind {shop}\n    default_backend {BACKEND}\n\
             backend {BACKEND}\n"
        );
        for (name, addr) in servers {
            config.push_str(&format!("    server {name} {addr}\n"));
        }
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).unwrap();
        let log = dir.path().join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("/usr/sbin/haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting /usr/sbin/haproxy (package haproxy)");
        let haproxy = Haproxy {
            child,
            metrics,
            shop,
            _dir: dir,
        };
        let up = wait_until(Duration::from_secs(10), || async {
            matches!(
                http_request(metrics, "GET", "/metrics", &[], b"").await,
                Ok((200, _))
            )
        })
        .await;
        assert!(
            up,
            "haproxy's exporter did not answer on {metrics}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A web server answering every request with 200, or with 500 for every `fail_every`-th
/// request (never when 0); returns its address and how many requests it got.
async fn web(fail_every: u64) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if fail_every > 0 && n.is_multiple_of(fail_every) {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "fail\n")
            } else {
                (axum::http::StatusCode::OK, "ok\n")
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

async fn scrape_haproxy(haproxy: &Haproxy) -> Prometheus {
    let job = ScrapeJob::new("haproxy", &[&haproxy.metrics.to_string()]);
    let prometheus = Prometheus::start(&[job]).await.unwrap();
    assert!(
        prometheus
            .wait_for_target_up("haproxy", Duration::from_secs(20))
            .await,
        "prometheus did not scrape haproxy: {}",
        prometheus.log()
    );
    prometheus
}

/// Send `n` requests to `fe_shop`; returns how many got each status.
async fn traffic(haproxy: &Haproxy, n: usize) -> std::collections::BTreeMap<u16, u64> {
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (status, _) = http_request(haproxy.shop, "GET", "/", &[], b"")
            .await
            .unwrap();
        *statuses.entry(status).or_default() += 1;
    }
    statuses
}

/// Wait until Prometheus has scraped `promql` at `want` (the traffic sent so far).
async fn wait_for_value(prometheus: &Prometheus, promql: &str, want: f64) {
    let seen = wait_until(Duration::from_secs(20), || async {
        prometheus.value(promql).await.ok().flatten() == Some(want)
    })
    .await;
    assert!(
        seen,
        "{promql} did not reach {want}: {:?}",
        prometheus.query(promql).await
    );
}

#[tokio::test]
async fn canary_error_ratio_from_haproxy_server_responses() {
    let (stable, stable_seen) = web(0).await;
    let (canary, canary_seen) = web(2).await;
    let haproxy = Haproxy::start(&[("r1-9001", stable), ("r1-9002", canary)]).await;
    let prometheus = scrape_haproxy(&haproxy).await;
    println!("prometheus at {}", prometheus.url());

    // Exported (as 0) before any traffic; the ratio has no value yet (no rate, or 0/0).
    let series = prometheus
        .query(&format!(
            "haproxy_server_http_responses_total{{proxy=\"{BACKEND}\"}}"
        ))
        .await
        .unwrap();
    let codes: Vec<String> = series["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"]["server"] == "r1-9002")
        .map(|s| s["metric"]["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 6, "1xx..5xx and other for r1-9002: {series:#}");
    for code in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] {
        assert!(codes.iter().any(|c| c == code), "no {code}: {series:#}");
    }
    let before = prometheus.value(CANARY_ERROR_RATIO).await.unwrap();
    assert!(before.is_none_or(f64::is_nan), "{before:?}");

    let statuses = traffic(&haproxy, 20).await;
    println!("responses by status: {statuses:?}");
    let canary_requests = canary_seen.load(Ordering::SeqCst);
    assert!(canary_requests > 0 && stable_seen.load(Ordering::SeqCst) > 0);
    assert_eq!(statuses.get(&500).copied(), Some(canary_requests / 2));
    wait_for_value(
        &prometheus,
        &format!("sum(haproxy_server_http_responses_total{{proxy=\"{BACKEND}\"}})"),
        20.0,
    )
    .await;

    // Both sides of the ratio come from the same scrapes, which started at 0: exact.
    let ratio = prometheus.value(CANARY_ERROR_RATIO).await.unwrap().unwrap();
    println!("{CANARY_ERROR_RATIO} = {ratio}");
    let expected = (canary_requests / 2) as f64 / canary_requests as f64;
    assert!((ratio - expected).abs() < 1e-9, "{ratio} != {expected}");
    let stable_ratio = prometheus
        .value(&CANARY_ERROR_RATIO.replace("-9002", "-9001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stable_ratio, 0.0);

    let error = prometheus.query("sum(").await.unwrap_err();
    assert!(format!("{error:#}").contains("bad_data"), "{error:#}");
}

/// A canary server that refuses connections: HAProxy sends the request to another server
/// (`option redispatch 1`), so clients see no error and the canary has no responses at all:
/// a canary query on `haproxy_server_http_responses_total` alone sees no traffic (NaN)
/// rather than errors; the redispatches show in `haproxy_server_redispatch_warnings_total`.
#[tokio::test]
async fn refused_connections_are_redispatched_not_counted_as_responses() {
    let (stable, stable_seen) = web(0).await;
    let closed: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let haproxy = Haproxy::start(&[("r1-9001", stable), ("r1-9002", closed)]).await;
    let prometheus = scrape_haproxy(&haproxy).await;

    let statuses = traffic(&haproxy, 10).await;
    println!("responses by status: {statuses:?}");
    assert_eq!(statuses.get(&200), Some(&10), "{statuses:?}");
    assert_eq!(stable_seen.load(Ordering::SeqCst), 10);
    wait_for_value(
        &prometheus,
        &format!("sum(haproxy_backend_http_responses_total{{proxy=\"{BACKEND}\"}})"),
        10.0,
    )
    .await;

    let server = |metric: &str| format!("sum({metric}{{proxy=\"{BACKEND}\",server=\"r1-9002\"}})");
    let redispatched = prometheus
        .value(&server("haproxy_server_redispatch_warnings_total"))
        .await
        .unwrap();
    assert!(redispatched.is_some_and(|n| n > 0.0), "{redispatched:?}");
    let responses = prometheus
        .value(&server("haproxy_server_http_responses_total"))
        .await
        .unwrap();
    assert_eq!(responses, Some(0.0));
    let ratio = prometheus.value(CANARY_ERROR_RATIO).await.unwrap();
    assert!(ratio.is_some_and(f64::is_nan), "{ratio:?}");
}

//! A real Prometheus server (Debian's `prometheus` package, 2.42) for one test, to check
//! PromQL that Ferry will send (canary analysis) against real scraped data rather than
//! against a fake: it scrapes the given jobs' targets, keeps its data in a temporary
//! directory, listens on 127.0.0.1 at a [`crate::free_port`], and is killed when dropped.
//!
//! It is ready within a fraction of a second, but scrapes its targets only ~5-10s later:
//! Prometheus 2.42 passes new targets from discovery to the scrape manager on 5s tickers,
//! with no flag to shorten them. Wait with [`Prometheus::wait_for_target_up`].
//!
//! It needs no harness variables; `tests/run.sh` installs the package when it is missing.

use anyhow::Context as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Prometheus::start`] waits for `/-/ready` (it usually takes well under a second).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one HTTP request to Prometheus may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One `scrape_configs` entry: every `interval`, `GET http://<target><metrics_path>` for
/// each target.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// The `job` label of the scraped series.
    pub name: String,
    /// `host:port`, e.g. `127.0.0.1:20123`.
    pub targets: Vec<String>,
    pub metrics_path: String,
    /// Also the scrape timeout. Tests use 1s, so data shows up quickly.
    pub interval: Duration,
}

impl ScrapeJob {
    /// A job scraping `/metrics` every second.
    pub fn new(name: &str, targets: &[&str]) -> ScrapeJob {
        ScrapeJob {
            name: name.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            metrics_path: "/metrics".to_owned(),
            interval: Duration::from_secs(1),
        }
    }
}

/// A running Prometheus; see the module's documentation.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    jobs: Vec<ScrapeJob>,
    // Dropped after the process is killed (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start Prometheus scraping `jobs` and wait until `/-/ready` answers 200. Must be called
    /// inside a tokio runtime.
    pub async fn start(jobs: &[ScrapeJob]) -> anyhow::Result<Prometheus> {
        let dir = tempfile::Builder::new().prefix("prometheus-").tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(jobs)?)?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let port = crate::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Stays in the test's process group: nextest kills the group when a test times
        // out, so no Prometheus outlives a killed test. The flags keep it small: one
        // hour of retention, two OS threads for Go code.
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=1h")
            .arg(format!("--web.listen-address={addr}"))
            .env("GOMAXPROCS", "2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "prometheus is not installed: `apt-get install prometheus` (tests/run.sh does)"
                ),
                _ => anyhow::Error::new(e).context("starting prometheus"),
            })?;
        let mut prometheus = Prometheus {
            child,
            addr,
            jobs: jobs.to_vec(),
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = prometheus.child.try_wait()? {
                anyhow::bail!(
                    "prometheus exited ({status}) before it was ready:\n{}",
                    prometheus.log_tail(30)
                );
            }
            if matches!(get(addr, "/-/ready").await, Ok((200, _))) {
                return Ok(prometheus);
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "prometheus not ready on {addr} after {READY_TIMEOUT:?}:\n{}",
                    prometheus.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`, for code under test that queries Prometheus itself.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An instant query (`GET /api/v1/query`, evaluated now): the response's `data`, e.g.
    /// `{"resultType": "vector", "result": [{"metric": {...}, "value": [1700000000.123, "0.5"]}]}`.
    /// A PromQL error (bad syntax, ...) is an `Err` with Prometheus's message.
    pub async fn query(&self, promql: &str) -> anyhow::Result<serde_json::Value> {
        let (status, body) = get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .await
        .context("querying prometheus")?;
        let mut json: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("prometheus answered HTTP {status}: {body:?}"))?;
        if json["status"] != "success" {
            anyhow::bail!(
                "query {promql:?} failed (HTTP {status}): {}: {}",
                json["errorType"],
                json["error"]
            );
        }
        Ok(json["data"].take())
    }

    /// The value of a query whose result is a scalar or a vector with (at least) one
    /// element, e.g. a `sum(...)` or a ratio of sums; `None` for an empty vector (no
    /// matching series yet). May be NaN (`0 / 0`: no traffic).
    pub async fn value(&self, promql: &str) -> anyhow::Result<Option<f64>> {
        let data = self.query(promql).await?;
        let sample = match data["resultType"].as_str() {
            Some("scalar") => &data["result"],
            Some("vector") => match data["result"].get(0) {
                Some(element) => &element["value"],
                None => return Ok(None),
            },
            other => anyhow::bail!("query {promql:?} gave a {other:?}, not a scalar or vector"),
        };
        let text = sample[1]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("not a sample: {sample}"))?;
        Ok(Some(text.parse()?))
    }

    /// Wait until every target of `job` has been scraped successfully (`up{job=...} == 1`
    /// for each), at most `timeout`. False for a job that was not given to
    /// [`Prometheus::start`].
    pub async fn wait_for_target_up(&self, job: &str, timeout: Duration) -> bool {
        let Some(targets) = self
            .jobs
            .iter()
            .find(|j| j.name == job)
            .map(|j| j.targets.len())
        else {
            return false;
        };
        let promql = format!("count(up{{job={}}} == 1)", quote(job));
        crate::wait_until(timeout, || async {
            matches!(self.value(&promql).await, Ok(Some(n)) if n as usize == targets)
        })
        .await
    }

    /// Prometheus's own log (stdout and stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // The tempdir, and the log with it, goes away: show the log when the test failed.
        if std::thread::panicking() {
            eprintln!("--- prometheus log ({}):\n{}", self.addr, self.log_tail(30));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration file. YAML accepts JSON strings, so names, paths and targets are
/// written as JSON (quoted, escaped).
fn config_yaml(jobs: &[ScrapeJob]) -> anyhow::Result<String> {
    let mut yaml = String::from("scrape_configs:\n");
    for job in jobs {
        anyhow::ensure!(
            job.interval >= Duration::from_millis(1),
            "scrape job {}: interval under 1ms",
            job.name
        );
        // Prometheus's durations take whole milliseconds ("1500ms").
        let interval = format!("{}ms", job.interval.as_millis());
        yaml.push_str(&format!(
            "  - job_name: {}\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    metrics_path: {}\n    static_configs:\n      - targets: {}\n",
            quote(&job.name),
            quote(&job.metrics_path),
            serde_json::to_string(&job.targets)?,
        ));
    }
    Ok(yaml)
}

/// A string as a JSON string literal, which is also a PromQL and a YAML string literal.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Percent-encoding for a query string value: everything but the unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET target` as HTTP/1.0, returning the status and body. Not [`crate::http_request`]:
/// Go's server answers an HTTP/1.1 request with a body over 2 KiB in chunks, which that
/// helper does not decode; to HTTP/1.0 it sends the body as it is and closes.
async fn get(addr: SocketAddr, target: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(REQUEST_TIMEOUT, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_quotes_and_uses_milliseconds() {
        let job = ScrapeJob {
            interval: Duration::from_millis(1500),
            ..ScrapeJob::new("ha\"proxy", &["127.0.0.1:1", "127.0.0.1:2"])
        };
        assert_eq!(
            config_yaml(&[job]).unwrap(),
            "scrape_configs:\n  - job_name: \"ha\\\"proxy\"\n    scrape_interval: 1500ms\n    scrape_timeout: 1500ms\n    metrics_path: \"/metrics\"\n    static_configs:\n      - targets: [\"127.0.0.1:1\",\"127.0.0.1:2\"]\n"
        );
    }

    #[test]
    fn encodes_promql() {
        assert_eq!(
            encode("up{job=\"a b\"} == 1"),
            "up%7Bjob%3D%22a%20b%22%7D%20%3D%3D%201"
        );
    }
}

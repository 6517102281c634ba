//! A Docker host's own event stream, recorded while a test runs.
//!
//! Why not `docker events --since` afterwards: the daemon replays only its last 256
//! events, and the suite's tests share the hosts. A busy host had pushed a test's first
//! container create out of that window by the time the test asked (CI saw two creates of
//! three). Streaming from the start keeps every event.

use anyhow::Context as _;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `docker events --format '{{json .}}'` of one host, filtered, read by a thread into
/// memory until dropped.
pub struct EventLog {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl EventLog {
    /// Starts recording the events of `host` matching every `filter` (`docker events
    /// --filter` syntax), from one second ago: the daemon's replay covers the moment the
    /// stream takes to open.
    pub fn start(host: &str, filters: &[String]) -> anyhow::Result<Self> {
        Self::start_since(
            host,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().cast_signed())
                .saturating_sub(1),
            filters,
        )
    }

    /// [`EventLog::start`] replaying from `since_s` (unix seconds; only as far back as
    /// the daemon's last 256 events reach).
    pub fn start_since(host: &str, since_s: i64, filters: &[String]) -> anyhow::Result<Self> {
        let since = since_s.to_string();
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(host)
            .args(["events", "--since", &since, "--format", "{{json .}}"]);
        for f in filters {
            cmd.arg("--filter").arg(f);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker events")?;
        let stdout = child.stdout.take().context("docker events has no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !line.trim().is_empty() {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// Everything recorded so far, one JSON object per line, once no new event has come
    /// for 300 ms (or after 3 s): events of the last moment are still on their way.
    pub fn lines(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = self.count();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.count();
            if now == seen || Instant::now() > deadline {
                break;
            }
            seen = now;
        }
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

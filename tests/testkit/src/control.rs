//! A control for tests that assert "no request failed" while Ferry switches traffic under
//! load: a web container Ferry does not manage, on the same Docker host, loaded alongside
//! the release under test.
//!
//! The test releases are busybox httpd, which forks for every request and, when it cannot
//! fork, closes the connection unanswered (the proxy, after its retries, answers 502).
//! So a moment when the machine cannot start processes fails requests whatever Ferry
//! does: once in CI, every request for 180 ms (189 of them) got that 502. A failure the
//! control saw at the same moment is the machine's; any other failure is the test's
//! finding, and a control that itself failed often means the run cannot be judged.

use crate::load::{Failure, Load, LoadReport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How close a failure of the control must be for a failure under test to be the
/// machine's (a request that could not fork fails within milliseconds; the control,
/// one request at a time, sends one every few milliseconds).
pub const MARGIN: Duration = Duration::from_millis(300);

/// The share of its requests the control may fail before the run cannot be judged.
const CONTROL_MAX_FAILED_PERCENT: u64 = 5;

/// A running control: [`Control::stop`] it once the loads under test have stopped.
pub struct Control {
    host: String,
    name: String,
    load: Option<Load>,
}

impl Control {
    /// Start the control web container on `host` (host network, a free loopback port)
    /// and one request loop against it.
    pub async fn start(host: &str) -> anyhow::Result<Control> {
        let image = crate::web_image(host, "control", "control", true)?;
        let port = crate::free_port();
        let name = format!("ferry-control-{}", crate::unique_namespace());
        let listen = format!("127.0.0.1:{port}");
        crate::docker(
            host,
            None,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "host",
                &image,
                "/bin/httpd",
                "-f",
                "-p",
                &listen,
                "-h",
                "/www",
            ],
        )?;
        let mut control = Control {
            host: host.to_owned(),
            name,
            load: None,
        };
        let addr: SocketAddr = listen.parse()?;
        let up = crate::wait_until(Duration::from_secs(20), || async move {
            crate::http_request(addr, "GET", "/", &[], b"")
                .await
                .is_ok_and(|(code, _)| code == 200)
        })
        .await;
        anyhow::ensure!(up, "the control web container did not answer on {addr}");
        control.load = Some(Load::start(addr, "/", 1, Duration::from_secs(600)));
        Ok(control)
    }

    /// Stop the control's load and remove it; what it saw judges the loads under test.
    pub async fn stop(mut self) -> ControlReport {
        match self.load.take() {
            Some(load) => ControlReport(load.stop().await),
            None => ControlReport(LoadReport::default()),
        }
    }
}

/// What the control saw, while the loads under test ran.
#[derive(Debug)]
pub struct ControlReport(pub LoadReport);

impl ControlReport {
    /// Judge `seen`, a load that ran while the control did: every failure in it must
    /// have a failure of the control within [`MARGIN`]. Panics with both reports when
    /// one does not, or when the control failed too often to judge anything.
    #[track_caller]
    pub fn judge(&self, seen: &LoadReport) {
        self.judge_except(seen, None);
    }

    /// [`judge`](Self::judge), where a response whose body's first line is `expected`
    /// is no failure to explain (a canary's own errors, which the test counts itself).
    #[track_caller]
    pub fn judge_except(&self, seen: &LoadReport, expected: Option<&str>) {
        let control = &self.0;
        match verdict(seen, control, expected) {
            Err(why) => panic!("{why}\nunder test: {seen:?}\ncontrol: {control:?}"),
            Ok(0) => {}
            Ok(excused) => eprintln!(
                "{excused} failures under test were the machine's: the control failed then \
                 too\nunder test: {seen:?}\ncontrol: {control:?}"
            ),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = crate::docker(&self.host, None, &["rm", "-f", &self.name]);
    }
}

/// How many failures in `seen` the control explains, when it explains every one that is
/// not `expected`.
fn verdict(
    seen: &LoadReport,
    control: &LoadReport,
    expected: Option<&str>,
) -> Result<usize, String> {
    if control.ok == 0 || control.failed * 100 > control.sent * CONTROL_MAX_FAILED_PERCENT {
        return Err(format!(
            "the control web container failed {} of {} requests: this machine could not \
             serve, so the test cannot tell Ferry's failures from its own",
            control.failed, control.sent
        ));
    }
    let near = |t: Instant| {
        control.failures.0.iter().any(|c| {
            t.saturating_duration_since(c.at)
                .max(c.at.saturating_duration_since(t))
                <= MARGIN
        })
    };
    let to_explain: Vec<&Failure> = seen
        .failures
        .0
        .iter()
        .filter(|f| expected.is_none() || f.body.as_deref() != expected)
        .collect();
    let unexplained = to_explain.iter().filter(|f| !near(f.at)).count();
    if unexplained > 0 {
        return Err(format!(
            "{unexplained} of {} failed requests happened while the control web container \
             served without failing: they are the switch's",
            to_explain.len()
        ));
    }
    Ok(to_explain.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Failures;

    fn report(sent: u64, failures: Vec<(Instant, &str)>) -> LoadReport {
        LoadReport {
            sent,
            ok: sent - failures.len() as u64,
            failed: failures.len() as u64,
            failures: Failures(
                failures
                    .into_iter()
                    .map(|(at, body)| Failure {
                        at,
                        body: Some(body.to_owned()),
                    })
                    .collect(),
            ),
            ..LoadReport::default()
        }
    }

    #[test]
    fn only_failures_the_control_shared_are_the_machines() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let bad = |ms: u64| (at(ms), "<html><body><h1>502 Bad Gateway</h1>");
        let control = report(1000, vec![(at(7_260), ""), (at(7_400), "")]);
        // A burst the control saw too.
        let burst = report(5000, vec![bad(7_262), bad(7_380), bad(7_440)]);
        assert_eq!(verdict(&burst, &control, None), Ok(3));
        // One a second later, while the control served: the switch's.
        let later = report(5000, vec![bad(7_262), bad(8_500)]);
        let err = verdict(&later, &control, None).unwrap_err();
        assert!(err.starts_with("1 of 2 failed requests"), "{err}");
        // A canary's own errors are counted by the test, not explained.
        let canary = report(5000, vec![(at(1_000), "flaky-v2-error"), bad(7_300)]);
        assert_eq!(verdict(&canary, &control, Some("flaky-v2-error")), Ok(1));
        assert!(verdict(&canary, &control, None).is_err());
        // No failure at all needs no control failure.
        assert_eq!(
            verdict(&report(5000, vec![]), &report(1000, vec![]), None),
            Ok(0)
        );
        // A control that failed often, or never served, judges nothing.
        let broken = report(100, (0..10).map(|ms| (at(ms), "")).collect());
        assert!(verdict(&report(5000, vec![]), &broken, None).is_err());
        assert!(verdict(&report(5000, vec![]), &LoadReport::default(), None).is_err());
    }
}

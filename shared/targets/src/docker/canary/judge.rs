//! Whether a canary step stays within its bounds, from the proxy's counters for the new
//! release over the step: a pure function of the numbers, so the rule is tested alone.

use crate::docker::proxy::Counters;
use ferry_shared::config::CanaryConfig;

/// What the new release did during a step, summed over its hosts and replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Seen {
    pub counters: Counters,
    /// The slowest replica's average time to the response headers, in ms.
    pub rtime_ms: u64,
}

impl Seen {
    /// The failed share of its responses, in percent (connections refused count as
    /// requests that got no response).
    pub fn error_percent(&self) -> f64 {
        let c = &self.counters;
        let tried = (c.responses + c.econ).max(1);
        c.failures() as f64 * 100.0 / tried as f64
    }

    /// The numbers, for logs, events and notifications.
    pub fn describe(&self) -> String {
        let c = &self.counters;
        format!(
            "{} of {} responses failed ({:.1} %: {} 5xx, {} cut, {} refused, {} retried away), average response {} ms",
            c.failures(),
            c.responses,
            self.error_percent(),
            c.hrsp_5xx,
            c.eresp,
            c.econ,
            c.wretr,
            self.rtime_ms
        )
    }
}

/// Why the step broke its bounds, or `None` while it holds. Too few responses are not
/// judged by rate or time: one error in three requests says little.
pub fn broken(cfg: &CanaryConfig, seen: &Seen) -> Option<String> {
    let c = &seen.counters;
    if c.responses + c.econ < cfg.min_requests.max(1) {
        return None;
    }
    let percent = seen.error_percent();
    if percent > cfg.max_error_percent {
        return Some(format!(
            "{:.1} % of its responses failed, above the {} % allowed",
            percent, cfg.max_error_percent
        ));
    }
    match cfg.max_response_ms {
        Some(max) if seen.rtime_ms > max => Some(format!(
            "its average response took {} ms, above the {max} ms allowed",
            seen.rtime_ms
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::config::CanaryConfig;

    fn cfg() -> CanaryConfig {
        CanaryConfig {
            steps: vec![],
            max_error_percent: 1.0,
            max_response_ms: Some(500),
            min_requests: 20,
            prometheus: None,
        }
    }

    fn seen(responses: u64, hrsp_5xx: u64, econ: u64, rtime_ms: u64) -> Seen {
        Seen {
            counters: Counters {
                responses,
                hrsp_5xx,
                econ,
                ..Default::default()
            },
            rtime_ms,
        }
    }

    #[test]
    fn a_step_breaks_on_errors_or_slowness_once_there_are_enough_requests() {
        assert_eq!(
            broken(&cfg(), &seen(10, 5, 0, 10)),
            None,
            "too few to judge"
        );
        assert_eq!(broken(&cfg(), &seen(200, 2, 0, 10)), None, "exactly 1 %");
        let why = broken(&cfg(), &seen(200, 10, 0, 10)).unwrap();
        assert!(why.contains("5.0 %"), "{why}");
        let why = broken(&cfg(), &seen(100, 0, 3, 10)).unwrap();
        assert!(why.contains("2.9 %"), "refused connections count: {why}");
        let why = broken(&cfg(), &seen(100, 0, 0, 800)).unwrap();
        assert!(why.contains("800 ms"), "{why}");
        assert!(
            seen(200, 10, 0, 3)
                .describe()
                .starts_with("10 of 200 responses failed (5.0 %")
        );
    }
}

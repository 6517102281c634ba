//! A run's timeline: one bar per stage it went through, like the old chain's release
//! timeline. A bar runs from the event that caused a stage's outcome to the outcome
//! (every event names its cause), so it needs no list of which event starts what.

use crate::runs::Line;
use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Waiting on a person or still running (the bar ends now).
    Open,
    /// Not a failure, not a success: superseded, rejected, expired.
    Ended,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// `build`, `push`, `pull`, `deploy`, `test`, `approval`, `scale`.
    pub stage: &'static str,
    pub environment: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub outcome: Outcome,
}

/// The stage an outcome event ends, and how; `None` for events that end no stage.
fn ends(kind: &str) -> Option<(&'static str, Outcome)> {
    Some(match kind {
        "image.built" => ("build", Outcome::Passed),
        "build.failed" => ("build", Outcome::Failed),
        "image.pushed" => ("push", Outcome::Passed),
        "push.failed" => ("push", Outcome::Failed),
        "image.pulled" => ("pull", Outcome::Passed),
        "pull.failed" => ("pull", Outcome::Failed),
        "deploy.succeeded" => ("deploy", Outcome::Passed),
        "deploy.failed" | "deploy.rolled_back" => ("deploy", Outcome::Failed),
        "deploy.superseded" => ("deploy", Outcome::Ended),
        "test.passed" => ("test", Outcome::Passed),
        "test.failed" => ("test", Outcome::Failed),
        "approval.granted" => ("approval", Outcome::Passed),
        "approval.rejected" | "approval.expired" => ("approval", Outcome::Ended),
        "scale.succeeded" => ("scale", Outcome::Passed),
        "scale.failed" => ("scale", Outcome::Failed),
        _ => return None,
    })
}

/// The bars of a run's events (in any order), by start time. A hold not yet decided is
/// an open bar up to `now`.
pub fn bars(lines: &[Line], now: DateTime<Utc>) -> Vec<Bar> {
    let time_of = |id| lines.iter().find(|l| l.event_id == id).map(|l| l.time);
    let mut bars: Vec<Bar> = lines
        .iter()
        .filter_map(|l| {
            let (stage, outcome) = ends(l.kind)?;
            let from = l.causation_id.and_then(time_of).unwrap_or(l.time);
            Some(Bar {
                stage,
                environment: l.environment.as_deref().map(str::to_owned),
                from: from.min(l.time),
                to: l.time,
                outcome,
            })
        })
        .collect();
    for held in lines.iter().filter(|l| l.kind == "approval.requested") {
        let decided = lines.iter().any(|l| {
            l.kind.starts_with("approval.") && l.kind != "approval.requested" && l.time >= held.time
        });
        if !decided {
            bars.push(Bar {
                stage: "approval",
                environment: held.environment.as_deref().map(str::to_owned),
                from: held.time,
                to: now.max(held.time),
                outcome: Outcome::Open,
            });
        }
    }
    bars.sort_by_key(|b| (b.from, b.to));
    bars
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn line(kind: &'static str, s: i64, cause: Option<Uuid>, env: Option<&str>) -> Line {
        Line {
            event_id: Uuid::new_v4(),
            causation_id: cause,
            kind,
            environment: env.map(Into::into),
            time: DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap(),
            image: None,
            detail: None,
            revision: None,
            hosts: Box::default(),
        }
    }

    #[test]
    fn each_stage_is_a_bar_from_its_cause_to_its_outcome_and_failures_are_marked() {
        let source = line("source.changed", 0, None, None);
        let built = line("image.built", 40, Some(source.event_id), None);
        let pushed = line("image.pushed", 45, Some(built.event_id), None);
        let pulled = line("image.pulled", 50, Some(pushed.event_id), Some("staging"));
        let started = line("deploy.started", 51, Some(pulled.event_id), Some("staging"));
        let deployed = line(
            "deploy.succeeded",
            60,
            Some(pulled.event_id),
            Some("staging"),
        );
        let failed = line("test.failed", 70, Some(deployed.event_id), Some("staging"));
        let lines = [failed, started, deployed, pulled, pushed, built, source];
        let bars = bars(&lines, Utc::now());
        let got: Vec<_> = bars
            .iter()
            .map(|b| {
                (
                    b.stage,
                    b.from.timestamp() - 1_700_000_000,
                    b.to.timestamp() - 1_700_000_000,
                    b.outcome,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("build", 0, 40, Outcome::Passed),
                ("push", 40, 45, Outcome::Passed),
                ("pull", 45, 50, Outcome::Passed),
                ("deploy", 50, 60, Outcome::Passed),
                ("test", 60, 70, Outcome::Failed),
            ]
        );
        assert_eq!(bars[3].environment.as_deref(), Some("staging"));
    }

    #[test]
    fn an_undecided_hold_is_open_until_now_and_a_decided_one_is_not() {
        let passed = line("test.passed", 0, None, Some("staging"));
        let held = line(
            "approval.requested",
            1,
            Some(passed.event_id),
            Some("production"),
        );
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let open = bars(&[passed.clone(), held.clone()], now);
        let last = open.last().unwrap();
        assert_eq!(
            (last.stage, last.outcome, last.to),
            ("approval", Outcome::Open, now)
        );
        let granted = line(
            "approval.granted",
            30,
            Some(held.event_id),
            Some("production"),
        );
        let closed = bars(&[passed, held, granted], now);
        assert!(
            closed.iter().all(|b| b.outcome != Outcome::Open),
            "{closed:?}"
        );
        assert_eq!(closed.last().unwrap().to.timestamp(), 1_700_000_030);
    }
}

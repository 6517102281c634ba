//! What a run's events say about delivery, event by event: how long each stage took,
//! deploys and rollbacks, and the four delivery figures of each project's production
//! environment (its last one). Pure: the ledger recorder turns facts into Prometheus
//! metrics, and the dashboard summarises them over a window.
//!
//! Definitions (the README's "Delivery metrics" says the same):
//! - a **production deployment** is a `deploy.succeeded` in production;
//! - its **lead time** runs from the commit (the time the forge gave it, else when Ferry
//!   heard of it) to that `deploy.succeeded`; a deploy of an earlier image has none;
//! - a **change failure** is a production deployment that, while it was still the one
//!   serving, failed its tests there (`test.failed`) or was rolled back;
//! - **time to restore** runs from a failed deployment's `deploy.succeeded` to the
//!   rollback, or to the next deployment, that replaced it.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Event times and commit times remembered for the stage durations and lead times of
/// events still to come; the oldest are forgotten first (a run lasts minutes).
const REMEMBERED: usize = 20_000;

/// One event, as delivery needs it (from a ledger envelope or a run's line).
#[derive(Clone, Debug)]
pub struct Step<'a> {
    pub event_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub run_id: Uuid,
    pub project: &'a str,
    pub environment: Option<&'a str>,
    pub kind: &'a str,
    pub time: DateTime<Utc>,
    /// The commit's own time, on a `source.changed` whose forge gave one.
    pub committed: Option<DateTime<Utc>>,
}

impl Step<'_> {
    /// Where a run's lead time starts, on its `source.changed`: the commit's own time,
    /// else when Ferry heard of it.
    pub fn commit_time(&self) -> Option<DateTime<Utc>> {
        (self.kind == "source.changed").then(|| self.committed.unwrap_or(self.time))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Build,
    Push,
    Pull,
    Deploy,
    Test,
    Approval,
    Scale,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Push => "push",
            Stage::Pull => "pull",
            Stage::Deploy => "deploy",
            Stage::Test => "test",
            Stage::Approval => "approval",
            Stage::Scale => "scale",
        }
    }
}

/// How a stage ended: `ended` is neither (superseded, rejected, expired).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    Failed,
    Ended,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Ended => "ended",
        }
    }
}

/// Why a production deployment counts as a change failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    TestFailed,
    RolledBack,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::TestFailed => "test_failed",
            Cause::RolledBack => "rolled_back",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    RunStarted,
    /// A stage ended `seconds` after the event that started it.
    Stage {
        stage: Stage,
        outcome: Outcome,
        seconds: f64,
    },
    /// A deploy in any environment ended: succeeded, failed or superseded.
    Deploy {
        outcome: &'static str,
    },
    Rollback,
    /// A deployment to production; `lead_time` in seconds where the commit is known.
    ProductionDeploy {
        lead_time: Option<f64>,
    },
    /// The production deployment serving now failed.
    ChangeFailure {
        cause: Cause,
    },
    /// A failed production deployment was replaced, `seconds` after it went live.
    Restored {
        seconds: f64,
    },
}

/// The production deployment serving now.
#[derive(Clone, Debug)]
struct Serving {
    run_id: Uuid,
    since: DateTime<Utc>,
    failed: bool,
}

/// Follows events in the order they were published and says what each one means.
pub struct Tracker {
    /// Whether event times are kept, to time stages (the dashboard's figures need none).
    stage_times: bool,
    times: HashMap<Uuid, DateTime<Utc>>,
    commits: HashMap<Uuid, DateTime<Utc>>,
    order: VecDeque<(Uuid, bool)>,
    serving: HashMap<(String, String), Serving>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            stage_times: true,
            times: HashMap::new(),
            commits: HashMap::new(),
            order: VecDeque::new(),
            serving: HashMap::new(),
        }
    }
}

impl Tracker {
    /// A tracker for the delivery figures only: no stage durations, so no event times.
    pub fn without_stage_times() -> Self {
        Tracker {
            stage_times: false,
            ..Tracker::default()
        }
    }

    /// Which deployment serves in production and whether it failed, from an event
    /// recorded before this tracker started: nothing else is kept or said.
    pub fn seed(&mut self, step: &Step<'_>, production: Option<&str>) {
        if let (Some(env), Some(prod)) = (step.environment, production)
            && env == prod
        {
            self.production(step, env, &mut Vec::new());
        }
    }

    /// The facts `step` adds; `production` is the environment that counts as the
    /// project's production (its last), if it has environments.
    pub fn observe(&mut self, step: &Step<'_>, production: Option<&str>) -> Vec<Fact> {
        self.learn(step);
        let mut facts = Vec::new();
        if step.kind == "source.changed" {
            facts.push(Fact::RunStarted);
        }
        if let Some((stage, outcome)) = ends(step.kind) {
            // A cause recorded before a restart is unknown: no duration rather than a
            // wrong one.
            if let Some(from) = step.causation_id.and_then(|c| self.times.get(&c)) {
                let seconds = (step.time - *from).num_milliseconds().max(0) as f64 / 1000.0;
                facts.push(Fact::Stage {
                    stage,
                    outcome,
                    seconds,
                });
            }
        }
        match step.kind {
            "deploy.succeeded" => facts.push(Fact::Deploy {
                outcome: "succeeded",
            }),
            "deploy.failed" => facts.push(Fact::Deploy { outcome: "failed" }),
            "deploy.superseded" => facts.push(Fact::Deploy {
                outcome: "superseded",
            }),
            "deploy.rolled_back" => facts.push(Fact::Rollback),
            _ => {}
        }
        if let (Some(env), Some(prod)) = (step.environment, production)
            && env == prod
        {
            self.production(step, env, &mut facts);
        }
        facts
    }

    /// Remember an event's time (and a commit's) without saying anything about it: for
    /// events recorded before this tracker started, read back from the ledger.
    pub fn learn(&mut self, step: &Step<'_>) {
        if self.stage_times && self.times.insert(step.event_id, step.time).is_none() {
            self.order.push_back((step.event_id, false));
        }
        if let Some(at) = step.commit_time()
            && self.commits.insert(step.run_id, at).is_none()
        {
            self.order.push_back((step.run_id, true));
        }
        while self.order.len() > REMEMBERED {
            match self.order.pop_front() {
                Some((id, false)) => self.times.remove(&id),
                Some((id, true)) => self.commits.remove(&id),
                None => None,
            };
        }
    }

    /// Whether the event that caused `step` is known (its stage can be timed).
    pub fn knows_cause_of(&self, step: &Step<'_>) -> bool {
        step.causation_id
            .is_none_or(|c| self.times.contains_key(&c))
    }

    /// Whether the run's commit time is known.
    pub fn knows_commit_of(&self, run_id: Uuid) -> bool {
        self.commits.contains_key(&run_id)
    }

    fn production(&mut self, step: &Step<'_>, env: &str, facts: &mut Vec<Fact>) {
        let key = (step.project.to_owned(), env.to_owned());
        match step.kind {
            "deploy.succeeded" => {
                // The same deployment again: a redelivered event (a stage that died after
                // publishing, before its ack, publishes it again with the same id and
                // time). What serves, and whether it failed, has not changed.
                if self
                    .serving
                    .get(&key)
                    .is_some_and(|s| s.run_id == step.run_id && s.since == step.time)
                {
                    return;
                }
                let lead_time = self
                    .commits
                    .get(&step.run_id)
                    .map(|c| (step.time - *c).num_milliseconds().max(0) as f64 / 1000.0);
                facts.push(Fact::ProductionDeploy { lead_time });
                let before = self.serving.insert(
                    key,
                    Serving {
                        run_id: step.run_id,
                        since: step.time,
                        failed: false,
                    },
                );
                if let Some(b) = before.filter(|b| b.failed) {
                    facts.push(restored(&b, step.time));
                }
            }
            "test.failed" => {
                if let Some(s) = self.serving.get_mut(&key)
                    && s.run_id == step.run_id
                    && !s.failed
                {
                    s.failed = true;
                    facts.push(Fact::ChangeFailure {
                        cause: Cause::TestFailed,
                    });
                }
            }
            "deploy.rolled_back" => {
                if let Some(s) = self.serving.remove(&key) {
                    if !s.failed {
                        facts.push(Fact::ChangeFailure {
                            cause: Cause::RolledBack,
                        });
                    }
                    facts.push(restored(&s, step.time));
                }
            }
            _ => {}
        }
    }
}

fn restored(failed: &Serving, at: DateTime<Utc>) -> Fact {
    Fact::Restored {
        seconds: (at - failed.since).num_milliseconds().max(0) as f64 / 1000.0,
    }
}

/// The stage an event ends, and how.
pub fn ends(kind: &str) -> Option<(Stage, Outcome)> {
    Some(match kind {
        "image.built" => (Stage::Build, Outcome::Passed),
        "build.failed" => (Stage::Build, Outcome::Failed),
        "image.pushed" => (Stage::Push, Outcome::Passed),
        "push.failed" => (Stage::Push, Outcome::Failed),
        "image.pulled" => (Stage::Pull, Outcome::Passed),
        "pull.failed" => (Stage::Pull, Outcome::Failed),
        "deploy.succeeded" => (Stage::Deploy, Outcome::Passed),
        "deploy.failed" | "deploy.rolled_back" => (Stage::Deploy, Outcome::Failed),
        "deploy.superseded" => (Stage::Deploy, Outcome::Ended),
        "test.passed" => (Stage::Test, Outcome::Passed),
        "test.failed" => (Stage::Test, Outcome::Failed),
        "approval.granted" => (Stage::Approval, Outcome::Passed),
        "approval.rejected" | "approval.expired" => (Stage::Approval, Outcome::Ended),
        "scale.succeeded" => (Stage::Scale, Outcome::Passed),
        "scale.failed" => (Stage::Scale, Outcome::Failed),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run {
        id: Uuid,
        last: Uuid,
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn step<'a>(run: &mut Run, kind: &'a str, env: Option<&'a str>, s: i64) -> Step<'a> {
        let id = Uuid::new_v4();
        let cause = (kind != "source.changed").then_some(run.last);
        run.last = id;
        Step {
            event_id: id,
            causation_id: cause,
            run_id: run.id,
            project: "shop",
            environment: env,
            kind,
            time: at(s),
            committed: (kind == "source.changed").then(|| at(s - 60)),
        }
    }

    fn run() -> Run {
        Run {
            id: Uuid::new_v4(),
            last: Uuid::nil(),
        }
    }

    fn causes(facts: &[Fact]) -> Vec<Cause> {
        facts
            .iter()
            .filter_map(|f| match f {
                Fact::ChangeFailure { cause } => Some(*cause),
                _ => None,
            })
            .collect()
    }

    fn feed(t: &mut Tracker, steps: &[Step<'_>]) -> Vec<Fact> {
        steps
            .iter()
            .flat_map(|s| t.observe(s, Some("production")))
            .collect()
    }

    #[test]
    fn a_run_to_production_gives_stage_durations_a_deploy_and_its_lead_time() {
        let mut t = Tracker::default();
        let mut r = run();
        let steps = [
            step(&mut r, "source.changed", None, 0),
            step(&mut r, "image.built", None, 40),
            step(&mut r, "image.pushed", None, 45),
            step(&mut r, "image.pulled", Some("production"), 50),
            step(&mut r, "deploy.succeeded", Some("production"), 60),
        ];
        let facts = feed(&mut t, &steps);
        assert_eq!(facts[0], Fact::RunStarted);
        assert!(facts.contains(&Fact::Stage {
            stage: Stage::Build,
            outcome: Outcome::Passed,
            seconds: 40.0
        }));
        assert!(facts.contains(&Fact::Stage {
            stage: Stage::Deploy,
            outcome: Outcome::Passed,
            seconds: 10.0
        }));
        // From the commit, a minute before Ferry heard of it, to the deploy.
        assert!(facts.contains(&Fact::ProductionDeploy {
            lead_time: Some(120.0)
        }));
        assert!(
            !facts
                .iter()
                .any(|f| matches!(f, Fact::ChangeFailure { .. }))
        );
    }

    #[test]
    fn a_failed_test_then_a_rollback_is_one_failure_restored_when_rolled_back() {
        let mut t = Tracker::default();
        let mut r = run();
        let steps = [
            step(&mut r, "source.changed", None, 0),
            step(&mut r, "deploy.succeeded", Some("production"), 100),
            step(&mut r, "test.failed", Some("production"), 130),
            step(&mut r, "deploy.rolled_back", Some("production"), 160),
        ];
        let facts = feed(&mut t, &steps);
        let failures: Vec<_> = facts
            .iter()
            .filter(|f| matches!(f, Fact::ChangeFailure { .. }))
            .collect();
        assert_eq!(
            failures,
            [&Fact::ChangeFailure {
                cause: Cause::TestFailed
            }]
        );
        assert!(facts.contains(&Fact::Restored { seconds: 60.0 }));
        assert!(facts.contains(&Fact::Rollback));
    }

    #[test]
    fn an_operator_s_rollback_fails_the_deployment_serving_and_a_fix_forward_restores() {
        let mut t = Tracker::default();
        let (mut a, mut b, mut c) = (run(), run(), run());
        let mut steps = vec![
            step(&mut a, "source.changed", None, 0),
            step(&mut a, "deploy.succeeded", Some("production"), 10),
        ];
        // An operator's rollback, in a run of its own.
        steps.push(step(&mut b, "deploy.rolled_back", Some("production"), 70));
        // A failed test in staging is no production failure.
        steps.push(step(&mut c, "source.changed", None, 100));
        steps.push(step(&mut c, "deploy.succeeded", Some("production"), 200));
        steps.push(step(&mut c, "test.failed", Some("staging"), 210));
        steps.push(step(&mut c, "test.failed", Some("production"), 220));
        let mut d = run();
        steps.push(step(&mut d, "source.changed", None, 300));
        steps.push(step(&mut d, "deploy.succeeded", Some("production"), 500));
        let facts = feed(&mut t, &steps);
        let failures = causes(&facts);
        assert_eq!(failures, [Cause::RolledBack, Cause::TestFailed]);
        let restores: Vec<_> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::Restored { seconds } => Some(*seconds),
                _ => None,
            })
            .collect();
        // Rolled back 60 s after it went live; fixed forward 300 s after.
        assert_eq!(restores, [60.0, 300.0]);
        let deploys = facts
            .iter()
            .filter(|f| matches!(f, Fact::ProductionDeploy { .. }))
            .count();
        assert_eq!(deploys, 3);
    }

    #[test]
    fn a_stage_whose_cause_is_unknown_has_no_duration_and_a_deploy_of_an_old_image_no_lead_time() {
        let mut t = Tracker::default();
        let mut r = run();
        r.last = Uuid::new_v4();
        let deployed = step(&mut r, "deploy.succeeded", Some("production"), 10);
        assert!(!t.knows_cause_of(&deployed));
        let facts = t.observe(&deployed, Some("production"));
        assert!(!facts.iter().any(|f| matches!(f, Fact::Stage { .. })));
        assert!(facts.contains(&Fact::ProductionDeploy { lead_time: None }));
    }

    #[test]
    fn a_redelivered_deploy_after_its_failed_test_changes_nothing() {
        let mut t = Tracker::default();
        let mut r = run();
        let deployed = {
            step(&mut r, "source.changed", None, 0);
            step(&mut r, "deploy.succeeded", Some("production"), 100)
        };
        let mut steps = vec![deployed.clone()];
        steps.push(step(&mut r, "test.failed", Some("production"), 130));
        // The updater died after publishing, before its ack: the same event again.
        steps.push(deployed);
        steps.push(step(&mut r, "deploy.rolled_back", Some("production"), 160));
        let facts = feed(&mut t, &steps);
        let failures = causes(&facts);
        assert_eq!(failures, [Cause::TestFailed]);
        assert!(facts.contains(&Fact::Restored { seconds: 60.0 }));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Tracker::default();
        for i in 0..(REMEMBERED + 500) {
            let mut r = run();
            t.learn(&step(&mut r, "image.built", None, i as i64));
        }
        assert!(t.times.len() <= REMEMBERED);
    }
}

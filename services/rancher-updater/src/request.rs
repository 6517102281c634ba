//! What an event asks the updater to do, decided from the event and the project's
//! configuration alone (what runs now is read later, under the deploy lock).

use ferry_shared::config::FerryConfig;
use ferry_shared::event::{ApprovalRequested, DeployReason, Envelope};
use ferry_shared::stage::{DeployInput, UnknownProject};
use uuid::Uuid;

pub enum Step {
    Deploy(Request),
    /// The environment needs an operator's approval first.
    Hold(Hold),
    /// An approval hold ran out (it came back dead-lettered by RabbitMQ).
    Expired(ApprovalRequested),
    /// `ferry scale`: run this many instances in the environment.
    Scale(Scale),
    /// An approval was refused or ran out: a canary of this image held for it in the
    /// environment goes back (nothing to do where there is none).
    Abandon {
        environment: String,
        image: String,
    },
    /// Nothing to deploy: an image ready in a later environment waits for promotion,
    /// a pass in the last environment ends the run.
    Nothing,
}

/// A run waiting for approval to go into `environment`.
pub struct Hold {
    pub environment: String,
    pub image: String,
    pub revision: String,
    /// The environment whose tests it passed (none when it waits for the first).
    pub passed_in: Option<String>,
    pub timeout_secs: u64,
}

pub struct Scale {
    pub environment: String,
    pub to: u32,
    pub requested_by: Option<String>,
}

pub struct Request {
    pub environment: String,
    /// Empty in a rollback to "what ran before", resolved under the lock.
    pub image: String,
    pub revision: String,
    pub kind: Kind,
    /// It comes from `ferry approve`: a canary held for it goes on.
    pub approved: bool,
}

pub enum Kind {
    Forward,
    /// A revision rebuilt to roll a later environment back, on its way through the
    /// environments before it: may go back to an older run like a rollback, and is
    /// announced as `deploy.succeeded` so its tests run like any run's.
    Restore,
    /// Back to an earlier image; may go to an older run than the one running.
    Rollback {
        reason: String,
        /// Roll back only if the environment still runs this run (a test failure
        /// must not undo a newer run deployed meanwhile).
        only_if_run: Option<Uuid>,
    },
}

impl Request {
    pub fn is_rollback(&self) -> bool {
        matches!(self.kind, Kind::Rollback { .. } | Kind::Restore)
    }
}

/// How a run deploys into `env`: forward; or, for a revision rebuilt to roll
/// `rollback_to` back, a restore on the way and the rollback itself there.
fn kind_into(event: &Envelope, env: &str) -> Kind {
    match &event.rollback_to {
        None => Kind::Forward,
        Some(target) if target != env => Kind::Restore,
        Some(_) => Kind::Rollback {
            reason: match &event.gate_override {
                None => format!(
                    "rollback to revision {} (it passed the environments before {env} on its way)",
                    event.event.revision().unwrap_or("?")
                ),
                Some(o) => format!(
                    "rollback to revision {} (the test gate skipped by {}: {})",
                    event.event.revision().unwrap_or("?"),
                    o.by,
                    o.reason
                ),
            },
            only_if_run: None,
        },
    }
}

/// What `event` (taken as `input`) asks for.
pub fn step(
    cfg: &FerryConfig,
    event: &Envelope,
    input: &DeployInput,
) -> Result<Step, UnknownProject> {
    let project = ferry_shared::stage::project(cfg, event)?;
    let env = event.environment.clone().unwrap_or_default();
    let forward = |environment: String, image: &str, revision: &str| {
        Step::Deploy(Request {
            kind: kind_into(event, &environment),
            environment,
            image: image.to_owned(),
            revision: revision.to_owned(),
            approved: false,
        })
    };
    // A revision rebuilt to roll one environment back goes through the environments
    // before it and their tests like any run, and stops there; with an operator's
    // recorded override (`gate_override`) it goes straight there instead.
    let overridden = event.rollback_to.is_some() && event.gate_override.is_some();
    Ok(match input {
        DeployInput::ImagePulled(p) => match &event.rollback_to {
            Some(target) if overridden && *target == env => forward(env, &p.image, &p.revision),
            _ if overridden => Step::Nothing,
            // The first environment needs approval too when it says so (a project that
            // deploys straight to a manual production).
            _ if project.environments.first() == Some(&env) => match cfg.environments.get(&env) {
                Some(c) if c.needs_approval() => Step::Hold(Hold {
                    environment: env.clone(),
                    image: p.image.clone(),
                    revision: p.revision.clone(),
                    passed_in: None,
                    timeout_secs: c.approval_timeout_secs,
                }),
                _ => forward(env, &p.image, &p.revision),
            },
            _ => Step::Nothing,
        },
        DeployInput::TestPassed(t) => {
            let next = project
                .environments
                .iter()
                .skip_while(|e| **e != env)
                .nth(1);
            match next {
                None => Step::Nothing,
                Some(_) if overridden || event.rollback_to.as_deref() == Some(env.as_str()) => {
                    Step::Nothing
                }
                Some(n) => match cfg.environments.get(n) {
                    Some(next_cfg) if next_cfg.needs_approval() => Step::Hold(Hold {
                        environment: n.clone(),
                        image: t.image.clone(),
                        revision: t.revision.clone(),
                        passed_in: Some(env),
                        timeout_secs: next_cfg.approval_timeout_secs,
                    }),
                    _ => forward(n.clone(), &t.image, &t.revision),
                },
            }
        }
        DeployInput::TestFailed(f) => match &f.report {
            // The checks failed: put back what ran before.
            Some(_) => Step::Deploy(Request {
                environment: env.clone(),
                image: String::new(),
                revision: String::new(),
                kind: Kind::Rollback {
                    reason: format!("tests failed in {env}: {}", f.failure.reason),
                    only_if_run: Some(event.run_id.into()),
                },
                approved: false,
            }),
            // The tester gave up (could not run the tests): leave things as they are.
            None => Step::Nothing,
        },
        DeployInput::DeployRequested(r) if r.reason == DeployReason::Rollback => {
            Step::Deploy(Request {
                environment: env,
                image: r.image.clone(),
                revision: r.revision.clone(),
                kind: Kind::Rollback {
                    reason: match &r.requested_by {
                        Some(who) => format!("rollback requested by {who}"),
                        None => "rollback requested".into(),
                    },
                    only_if_run: None,
                },
                approved: false,
            })
        }
        DeployInput::DeployRequested(r) => forward(env, &r.image, &r.revision),
        DeployInput::ApprovalGranted(d) => match forward(env, &d.image, &d.revision) {
            Step::Deploy(r) => Step::Deploy(Request {
                approved: true,
                ..r
            }),
            other => other,
        },
        DeployInput::ApprovalRejected(d) => match cfg.environments.get(&env) {
            Some(c) if c.canary.is_some() => Step::Abandon {
                environment: env,
                image: d.image.clone(),
            },
            _ => Step::Nothing,
        },
        DeployInput::HoldExpired(a) => Step::Expired(a.clone()),
        DeployInput::ScaleRequested(r) => Step::Scale(Scale {
            environment: env,
            to: r.to,
            requested_by: r.requested_by.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::event::{Decision, Event, GateOverride, ImagePulled, TestReport};
    use ferry_shared::stage::Input;

    /// What `event` asks for, taken the way the consumer hands it over.
    fn step_of(cfg: &FerryConfig, event: &Envelope) -> Step {
        let input = DeployInput::from_event(&event.event).expect("an event the updater takes");
        step(cfg, event, &input).unwrap()
    }

    fn cfg(production: &str) -> FerryConfig {
        let text = format!(
            r#"
            [environments.staging]
            [environments.production]
            {production}
            [projects.shop]
            image = "shop/web"
            environments = ["staging", "production"]
            source = {{ kind = "svn", url = "svn://x/shop" }}
            "#
        );
        FerryConfig::from_toml_with_env(&text, std::path::Path::new("t.toml")).unwrap()
    }

    /// An event of a run rebuilding revision 2 to roll production back.
    fn rebuilt(event: Event, env: &str, skipped_by: Option<&str>) -> Envelope {
        let mut e = Envelope::new_run("shop", event);
        e.environment = Some(env.into());
        e.rollback_to = Some("production".into());
        e.gate_override = skipped_by.map(|by| GateOverride {
            by: by.into(),
            reason: "prod is down".into(),
        });
        e
    }

    fn pulled() -> Event {
        Event::ImagePulled(ImagePulled {
            revision: "2".into(),
            image: "r/shop:2@sha256:00".into(),
            hosts: vec![],
        })
    }

    fn passed() -> Event {
        Event::TestPassed(TestReport {
            revision: "2".into(),
            image: "r/shop:2@sha256:00".into(),
            previous_image: None,
            checks: vec![],
            output: None,
            millis: 1,
        })
    }

    fn deploy(step: Step) -> Request {
        match step {
            Step::Deploy(r) => r,
            _ => panic!("expected a deploy"),
        }
    }

    #[test]
    fn a_rebuilt_rollback_passes_staging_and_its_tests_before_production() {
        let cfg = cfg("");
        let staged = deploy(step_of(&cfg, &rebuilt(pulled(), "staging", None)));
        assert_eq!(staged.environment, "staging");
        assert!(
            matches!(staged.kind, Kind::Restore),
            "announced for testing"
        );
        assert!(matches!(
            step_of(&cfg, &rebuilt(pulled(), "production", None)),
            Step::Nothing
        ));
        let prod = deploy(step_of(&cfg, &rebuilt(passed(), "staging", None)));
        assert_eq!(prod.environment, "production");
        assert!(matches!(prod.kind, Kind::Rollback { .. }));
        assert!(matches!(
            step_of(&cfg, &rebuilt(passed(), "production", None)),
            Step::Nothing
        ));
    }

    #[test]
    fn a_rebuilt_rollback_into_a_manual_production_waits_for_approval() {
        let cfg = cfg(r#"approval = "manual""#);
        assert!(matches!(
            step_of(&cfg, &rebuilt(passed(), "staging", None)),
            Step::Hold(_)
        ));
        let granted = Event::ApprovalGranted(Decision {
            revision: "2".into(),
            image: "r/shop:2@sha256:00".into(),
            by: "bob".into(),
            at: chrono::Utc::now(),
            comment: None,
        });
        let prod = deploy(step_of(&cfg, &rebuilt(granted, "production", None)));
        assert!(matches!(prod.kind, Kind::Rollback { .. }));
    }

    #[test]
    fn an_override_goes_straight_to_production_and_says_who_skipped_the_gate() {
        let cfg = cfg(r#"approval = "manual""#);
        assert!(matches!(
            step_of(&cfg, &rebuilt(pulled(), "staging", Some("alice"))),
            Step::Nothing
        ));
        let prod = deploy(step_of(
            &cfg,
            &rebuilt(pulled(), "production", Some("alice")),
        ));
        let Kind::Rollback { reason, .. } = prod.kind else {
            panic!()
        };
        assert!(
            reason.contains("skipped by alice: prod is down"),
            "{reason}"
        );
    }
}

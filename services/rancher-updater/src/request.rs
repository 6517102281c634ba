//! What an event asks the updater to do, decided from the event and the project's
//! configuration alone (what runs now is read later, under the deploy lock).

use ferry_shared::bus::Outcome;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{ApprovalRequested, Envelope, Event};
use ferry_shared::service::configured_project;
use uuid::Uuid;

pub enum Step {
    Deploy(Request),
    /// The environment needs an operator's approval first.
    Hold {
        environment: String,
        image: String,
        revision: String,
        passed_in: Option<String>,
        timeout_secs: u64,
    },
    /// An approval hold ran out (it came back dead-lettered by RabbitMQ).
    Expired(ApprovalRequested),
    /// Nothing to deploy: an image ready in a later environment waits for promotion,
    /// a pass in the last environment ends the run.
    Nothing,
}

pub struct Request {
    pub environment: String,
    /// Empty in a rollback to "what ran before", resolved under the lock.
    pub image: String,
    pub revision: String,
    pub kind: Kind,
}

pub enum Kind {
    Forward,
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
        matches!(self.kind, Kind::Rollback { .. })
    }
}

pub fn step(cfg: &FerryConfig, event: &Envelope, service: &str) -> Result<Step, Outcome> {
    let project = configured_project(cfg, event)?;
    let env = event.environment.clone().unwrap_or_default();
    let forward = |environment: String, image: &str, revision: &str| {
        Step::Deploy(Request {
            environment,
            image: image.to_owned(),
            revision: revision.to_owned(),
            kind: Kind::Forward,
        })
    };
    Ok(match &event.event {
        // A run rebuilt only to roll one environment back goes there and nowhere else.
        Event::ImagePulled(p) => match &event.rollback_to {
            Some(target) if *target == env => Step::Deploy(Request {
                environment: env,
                image: p.image.clone(),
                revision: p.revision.clone(),
                kind: Kind::Rollback {
                    reason: format!(
                        "rollback to revision {} (rebuilt: its image was gone from the registry)",
                        p.revision
                    ),
                    only_if_run: None,
                },
            }),
            Some(_) => Step::Nothing,
            // The first environment needs approval too when it says so (a project that
            // deploys straight to a manual production).
            None if project.environments.first() == Some(&env) => {
                match cfg.environments.get(&env) {
                    Some(c) if c.needs_approval() => Step::Hold {
                        environment: env.clone(),
                        image: p.image.clone(),
                        revision: p.revision.clone(),
                        passed_in: None,
                        timeout_secs: c.approval_timeout_secs,
                    },
                    _ => forward(env, &p.image, &p.revision),
                }
            }
            None => Step::Nothing,
        },
        Event::TestPassed(t) => {
            let next = project
                .environments
                .iter()
                .skip_while(|e| **e != env)
                .nth(1);
            match next {
                None => Step::Nothing,
                Some(_) if event.rollback_to.is_some() => Step::Nothing,
                Some(n) => match cfg.environments.get(n) {
                    Some(next_cfg) if next_cfg.needs_approval() => Step::Hold {
                        environment: n.clone(),
                        image: t.image.clone(),
                        revision: t.revision.clone(),
                        passed_in: Some(env),
                        timeout_secs: next_cfg.approval_timeout_secs,
                    },
                    _ => forward(n.clone(), &t.image, &t.revision),
                },
            }
        }
        Event::TestFailed(f) => match &f.report {
            // The checks failed: put back what ran before.
            Some(_) => Step::Deploy(Request {
                environment: env.clone(),
                image: String::new(),
                revision: String::new(),
                kind: Kind::Rollback {
                    reason: format!("tests failed in {env}: {}", f.failure.reason),
                    only_if_run: Some(event.run_id),
                },
            }),
            // The tester gave up (could not run the tests): leave things as they are.
            None => Step::Nothing,
        },
        Event::DeployRequested(r) if r.reason == "rollback" => Step::Deploy(Request {
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
        }),
        Event::DeployRequested(r) => forward(env, &r.image, &r.revision),
        Event::ApprovalGranted(d) => forward(env, &d.image, &d.revision),
        Event::ApprovalRequested(a) => Step::Expired(a.clone()),
        _ => return Err(ferry_shared::service::not_handled(service, event)),
    })
}

//! rancher-updater: deploys an image into one environment, and takes it back.
//!
//! Takes `image.pulled.<env>` (the project's first environment), `test.passed.<env>`
//! (promotion to the next environment, or an approval hold when that one has
//! `approval = "manual"`), `approval.granted.<env>`, `hold.expired.<env>`,
//! `test.failed.<env>` (roll back to what ran before) and `deploy.requested.<env>`
//! (manual deploys and rollbacks from the operator API).
//!
//! One deploy per (project, environment) at a time across all replicas: a deploy holds
//! a RabbitMQ-held lock (see `ferry_shared::bus::Lock`) while it runs. A run older
//! than the one running in the environment is not deployed (`deploy.superseded`)
//! unless it is an explicit rollback or started by an operator: "older" is the run's
//! place (SVN revision, git commit count, Harbor receipt time; see `ordering`), and
//! what runs carries the environment's newest place in a label (container labels, or
//! the Rancher launchConfig's).
//!
//! The targets themselves (`docker`: a rolling update over plain Docker hosts;
//! `rancher`: a Rancher 1.6 service upgrade) live in `ferry_targets`; this crate is the
//! handler, the approval gate, the run order and what an event asks for.

mod gate;
pub mod ordering;
mod request;

use ferry_shared::bus::{Context, Handler, Latest, Lock, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{
    ApprovalRequested, DeployRolledBack, DeployStarted, DeploySucceeded, DeploySuperseded,
    Envelope, Event, StageFailed,
};
use ferry_shared::service::ServiceDefaults;
use ferry_targets::{Deploy, DeployError, Environment, Outcome as DeployOutcome, Running, Target};
use request::{Kind, Request, Step};
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = "rancher-updater";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9605,
    prefetch: 4,
    handler_timeout_secs: 900,
    shutdown_grace_secs: 25,
};

/// How long a deploy waits for another deploy of the same environment to finish.
const LOCK_WAIT: Duration = Duration::from_secs(600);

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

/// The deploy lock, or why the deploy does not go ahead.
enum Locked {
    Held(Lock),
    /// A newer run was requested for the environment meanwhile.
    Superseded(uuid::Uuid),
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    async fn deploy(&self, ctx: &Context, event: &Envelope, mut req: Request) -> Outcome {
        let env = req.environment.clone();
        let env = env.as_str();
        let target = match Environment::of(&self.cfg, &event.project, env) {
            Ok(t) => t,
            Err(e) => return Outcome::GiveUp(e.to_string()),
        };
        // Checked before the request is recorded as the environment's newest: a forged
        // event naming a foreign image must neither deploy nor supersede real runs.
        if !req.image.is_empty()
            && let Err(refused) = self.refuse_foreign(&event.project, &req.image)
        {
            return self.failed(ctx, event, env, refused).await;
        }
        let lock = match self.lock(event, env, &req).await {
            Ok(Locked::Held(lock)) => lock,
            Ok(Locked::Superseded(newest)) => {
                return self.superseded(ctx, event, req, newest).await;
            }
            Err(outcome) => return outcome,
        };
        // A forward deploy can go ahead without knowing (the target reports its own
        // errors precisely); a rollback must know what to go back from.
        let current = match target.running().await {
            Ok(c) => c,
            Err(e) if req.is_rollback() => {
                return Outcome::RetryLater(format!("cannot read what runs in {env}: {e}"));
            }
            Err(_) => None,
        };
        if let Err(stop) = self
            .rollback_source(ctx, event, &mut req, current.as_ref())
            .await
        {
            return stop;
        }
        // What ran before comes from the environment's labels: it must be the project's
        // image too before anything is changed.
        if let Err(refused) = self.refuse_foreign(&event.project, &req.image) {
            return self.failed(ctx, event, env, refused).await;
        }
        let started = event.follow(
            Event::DeployStarted(DeployStarted {
                revision: req.revision.clone(),
                image: req.image.clone(),
                previous_image: current.as_ref().map(|c| c.image.clone()),
                rollback: req.is_rollback(),
            }),
            Some(env),
        );
        if let Err(retry) = ctx.publish(&started).await {
            return retry;
        }
        let outcome = self.run_target(&target, event, &req).await;
        drop(lock);
        match outcome {
            Ok(outcome) => self.announce(ctx, event, req, current, outcome).await,
            Err(e) if e.is_transient() => Outcome::RetryLater(e.to_string()),
            Err(e) => Outcome::GiveUp(e.to_string()),
        }
    }

    /// Record the request among the environment's recent ones (so that whoever holds
    /// the lock next can see the newest run requested), then take the deploy lock.
    async fn lock(&self, event: &Envelope, env: &str, req: &Request) -> Result<Locked, Outcome> {
        let lock_name = format!("deploy.{}.{env}", event.project);
        let latest = Latest::open(&self.cfg.broker, &lock_name)
            .await
            .map_err(|e| Outcome::RetryLater(format!("cannot record the deploy request: {e}")))?;
        if !req.is_rollback()
            && let Some(order) = &event.order
            && let Err(e) = latest
                .offer(&ordering::recorded(order, event.run_id.into()))
                .await
        {
            return Err(Outcome::RetryLater(format!(
                "cannot record the deploy request: {e}"
            )));
        }
        let lock = match Lock::acquire(&self.cfg.broker, &lock_name, LOCK_WAIT).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                return Err(Outcome::RetryLater(format!(
                    "another deploy of {} to {env} is still running",
                    event.project
                )));
            }
            Err(e) => {
                return Err(Outcome::RetryLater(format!(
                    "cannot take the deploy lock: {e}"
                )));
            }
        };
        if !req.is_rollback()
            && let Some(order) = &event.order
            && let Ok(recent) = latest.recent().await
            && let Some(newest) = ordering::newer_request(order, &recent)
        {
            return Ok(Locked::Superseded(newest));
        }
        Ok(Locked::Held(lock))
    }

    /// For a rollback: whether it still applies, and what it goes back to when the
    /// request names nothing ("what ran before", from the environment's labels).
    /// `Err` ends the handling with that outcome.
    async fn rollback_source(
        &self,
        ctx: &Context,
        event: &Envelope,
        req: &mut Request,
        current: Option<&Running>,
    ) -> Result<(), Outcome> {
        let Kind::Rollback { only_if_run, .. } = &req.kind else {
            return Ok(());
        };
        let env = req.environment.clone();
        if let Some(run) = only_if_run
            && current.and_then(|c| c.run_id) != Some(*run)
        {
            tracing::info!(
                environment = env,
                "not rolled back: it no longer runs this run"
            );
            return Err(Outcome::Done);
        }
        if !req.image.is_empty() {
            return Ok(());
        }
        match current.and_then(|c| c.previous_image.clone()) {
            Some(image) => {
                req.image = image;
                req.revision = current
                    .and_then(|c| c.previous_revision.clone())
                    .unwrap_or_default();
                Ok(())
            }
            None => {
                let why = format!(
                    "nothing to roll back to: {env} has no earlier deploy recorded \
                     (name a revision: ferry rollback {} --env {env} --to <revision>)",
                    event.project
                );
                Err(self.failed(ctx, event, &env, why).await)
            }
        }
    }

    /// Publish how the deploy ended.
    async fn announce(
        &self,
        ctx: &Context,
        event: &Envelope,
        req: Request,
        current: Option<Running>,
        outcome: DeployOutcome,
    ) -> Outcome {
        let env = req.environment.as_str();
        let result = match (outcome, req.kind) {
            (
                DeployOutcome::Succeeded {
                    previous_image,
                    hosts,
                    ..
                },
                Kind::Forward | Kind::Restore,
            ) => {
                tracing::info!(environment = env, revision = %req.revision, "deployed");
                Event::DeploySucceeded(DeploySucceeded {
                    revision: req.revision,
                    image: req.image,
                    previous_image,
                    hosts,
                })
            }
            (DeployOutcome::Succeeded { hosts, .. }, Kind::Rollback { reason, .. }) => {
                tracing::info!(environment = env, revision = %req.revision, "rolled back: {reason}");
                Event::DeployRolledBack(DeployRolledBack {
                    revision: req.revision,
                    image: req.image,
                    from_revision: current.as_ref().map(|c| c.revision.clone()),
                    from_image: current.map(|c| c.image),
                    reason,
                    hosts,
                })
            }
            (DeployOutcome::Failed(failure), _) => {
                return self.failed(ctx, event, env, failure.to_string()).await;
            }
            (DeployOutcome::Superseded { running }, _) => {
                Event::DeploySuperseded(DeploySuperseded {
                    revision: req.revision,
                    image: req.image,
                    running_image: running.image,
                    running_run_id: running.run_id.unwrap_or_default(),
                })
            }
        };
        ctx.publish_all(&[event.follow(result, Some(env))]).await
    }

    async fn run_target(
        &self,
        target: &Environment<'_>,
        event: &Envelope,
        req: &Request,
    ) -> Result<DeployOutcome, DeployError> {
        let deploy = Deploy {
            image: &req.image,
            revision: &req.revision,
            run_id: event.run_id.into(),
            order: event.order.as_ref(),
            // `ferry deploy` (explicit, no rollback) moves the environment's mark to its place.
            resets_mark: event.order.as_ref().is_some_and(|o| o.explicit)
                && event.rollback_to.is_none()
                && !req.is_rollback(),
        };
        if req.is_rollback() {
            target.roll_back(&deploy).await
        } else {
            target.deploy(&deploy).await
        }
    }

    /// `Err(reason)` when `image` may not be deployed for `project` (another registry,
    /// another project's repository, no digest): see `image_ref::deployable`.
    fn refuse_foreign(&self, project: &str, image: &str) -> Result<(), String> {
        ferry_shared::image_ref::deployable(&self.cfg, project, image)
            .map(drop)
            .map_err(|refused| format!("not deployed: {refused}"))
    }

    async fn failed(&self, ctx: &Context, event: &Envelope, env: &str, reason: String) -> Outcome {
        tracing::warn!(environment = env, "deploy failed: {reason}");
        let e = Event::DeployFailed(StageFailed {
            service: SERVICE.to_owned(),
            reason,
            attempts: ctx.attempt,
            failed_event_id: event.event_id,
            failed_kind: event.kind().to_owned(),
        });
        ctx.publish_all(&[event.follow(e, Some(env))]).await
    }

    /// A newer run was requested for the environment: this one is not deployed.
    async fn superseded(
        &self,
        ctx: &Context,
        event: &Envelope,
        req: Request,
        newer: uuid::Uuid,
    ) -> Outcome {
        tracing::info!(environment = %req.environment, newer = %newer, "superseded by a newer deploy request");
        let e = Event::DeploySuperseded(DeploySuperseded {
            revision: req.revision,
            image: req.image,
            running_image: String::new(),
            running_run_id: newer,
        });
        ctx.publish_all(&[event.follow(e, Some(&req.environment))])
            .await
    }
}

impl Handler for Stage {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        match request::step(&self.cfg, &event, SERVICE) {
            Ok(Step::Deploy(req)) => self.deploy(&ctx, &event, req).await,
            Ok(Step::Hold {
                environment,
                image,
                revision,
                passed_in,
                timeout_secs,
            }) => {
                // No approval is asked for an image the project may not deploy.
                if let Err(refused) = self.refuse_foreign(&event.project, &image) {
                    return self.failed(&ctx, &event, &environment, refused).await;
                }
                let timeout = Duration::from_secs(timeout_secs);
                let request = ApprovalRequested {
                    revision,
                    image,
                    passed_in,
                    expires_at: event.time
                        + chrono::Duration::from_std(timeout)
                            .unwrap_or_else(|_| chrono::Duration::days(36_500)),
                };
                gate::place(&self.cfg, &ctx, &event, request, &environment, timeout).await
            }
            Ok(Step::Expired(request)) => gate::expired(&ctx, &event, &request).await,
            Ok(Step::Nothing) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}

//! rancher-updater: deploys an image into one environment, and takes it back.
//!
//! Takes `image.pulled.<env>` (the project's first environment), `test.passed.<env>`
//! (promotion to the next environment, or an approval hold when that one has
//! `approval = "manual"`), `approval.granted.<env>`, `hold.expired.<env>`,
//! `test.failed.<env>` (roll back to what ran before) and `deploy.requested.<env>`
//! (manual deploys and rollbacks from the operator API) and `scale.requested.<env>`
//! (`ferry scale`, under the same deploy lock).
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

mod canary;
mod error;
mod gate;
pub mod ordering;
mod request;
mod scale;

pub use error::UpdaterError;

use ferry_shared::bus::{Contender, Context, Latest, Lock, StageSpec};
use ferry_shared::config::{FerryConfig, HostFiles};
use ferry_shared::event::{
    ApprovalRequested, DeployRolledBack, DeployStarted, DeploySucceeded, DeploySuperseded,
    Envelope, Event,
};
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{DeployInput, Input, Received, StageHandler};
use ferry_targets::{Deploy, DeployError, Environment, Outcome as DeployOutcome, Running, Target};
use request::{Kind, Request, Step};
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = DeployInput::SERVICE;

pub fn spec() -> StageSpec {
    DeployInput::spec()
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9605,
    prefetch: 4,
    handler_timeout_secs: 900,
    shutdown_grace_secs: 25,
    host_files: HostFiles::Check,
};

/// How long a deploy waits for another deploy of the same environment to finish.
const LOCK_WAIT: Duration = Duration::from_secs(600);

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

/// The deploy lock, or why the deploy does not go ahead.
enum Locked {
    /// Boxed: the lock's connection is large next to a run id.
    Held(Box<Lock>),
    /// A newer run was requested for the environment meanwhile.
    Superseded(uuid::Uuid),
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    async fn deploy(
        &self,
        ctx: &Context,
        event: &Envelope,
        mut req: Request,
    ) -> Result<(), UpdaterError> {
        let env = req.environment.clone();
        let env = env.as_str();
        let target = Environment::of(&self.cfg, &event.project, env)?;
        // Checked before the request is recorded as the environment's newest: a forged
        // event naming a foreign image must neither deploy nor supersede real runs.
        if !req.image.is_empty() {
            self.refuse_foreign(&event.project, &req.image, env)?;
        }
        let asked = std::time::Instant::now();
        let lock = match self.lock(event, env, &req).await? {
            Locked::Held(lock) => lock,
            Locked::Superseded(newest) => return self.superseded(ctx, event, req, newest).await,
        };
        let locked_ms = asked.elapsed().as_millis() as u64;
        // A forward deploy can go ahead without knowing (the target reports its own
        // errors precisely); a rollback must know what to go back from.
        let current = match target.running().await {
            Ok(c) => c,
            Err(source) if req.is_rollback() => {
                return Err(UpdaterError::Running {
                    environment: env.to_owned(),
                    source: Box::new(source),
                });
            }
            Err(_) => None,
        };
        if !self.rollback_source(event, &mut req, current.as_ref())? {
            return Ok(());
        }
        // What ran before comes from the environment's labels: it must be the project's
        // image too before anything is changed.
        self.refuse_foreign(&event.project, &req.image, env)?;
        let started = event.follow(
            Event::DeployStarted(DeployStarted {
                revision: req.revision.clone(),
                image: req.image.clone(),
                previous_image: current.as_ref().map(|c| c.image.clone()),
                rollback: req.is_rollback(),
            }),
            Some(env),
        );
        ctx.emit(&started).await?;
        tracing::info!(
            environment = env,
            locked_ms,
            started_ms = asked.elapsed().as_millis() as u64,
            "deploy started"
        );
        let outcome = self.run_target(&target, event, &req, &lock).await;
        drop(lock);
        self.announce(ctx, event, req, current, outcome?).await
    }

    /// Record the request among the environment's recent ones (so that whoever holds
    /// the lock next can see the newest run requested), then take the deploy lock.
    async fn lock(
        &self,
        event: &Envelope,
        env: &str,
        req: &Request,
    ) -> Result<Locked, UpdaterError> {
        let lock_name = format!("deploy.{}.{env}", event.project);
        // Two connections, opened at once; the offer still comes before the lock.
        let (latest, contender) = tokio::join!(
            Latest::open(&self.cfg.broker, &lock_name),
            Lock::connect(&self.cfg.broker, &lock_name)
        );
        let latest = latest.map_err(|e| UpdaterError::Record(e.to_string()))?;
        let contender = contender.map_err(|e| UpdaterError::Lock(e.to_string()))?;
        if !req.is_rollback()
            && let Some(order) = &event.order
        {
            latest
                .offer(&ordering::recorded(order, event.run_id.into()))
                .await
                .map_err(|e| UpdaterError::Record(e.to_string()))?;
        }
        let lock = held(contender, &event.project, env).await?;
        if !req.is_rollback()
            && let Some(order) = &event.order
            && let Ok(recent) = latest.recent().await
            && let Some(newest) = ordering::newer_request(order, &recent)
        {
            return Ok(Locked::Superseded(newest));
        }
        Ok(Locked::Held(Box::new(lock)))
    }

    /// For a rollback: whether it still applies (`false`: nothing to do), and what it
    /// goes back to when the request names nothing ("what ran before", from the
    /// environment's labels).
    fn rollback_source(
        &self,
        event: &Envelope,
        req: &mut Request,
        current: Option<&Running>,
    ) -> Result<bool, UpdaterError> {
        let Kind::Rollback { only_if_run, .. } = &req.kind else {
            return Ok(true);
        };
        if let Some(run) = only_if_run
            && current.and_then(|c| c.run_id) != Some(*run)
        {
            tracing::info!(
                environment = req.environment,
                "not rolled back: it no longer runs this run"
            );
            return Ok(false);
        }
        if !req.image.is_empty() {
            return Ok(true);
        }
        let Some(image) = current.and_then(|c| c.previous_image.clone()) else {
            return Err(UpdaterError::NothingToRollBack {
                project: event.project.clone(),
                environment: req.environment.clone(),
            });
        };
        req.image = image;
        req.revision = current
            .and_then(|c| c.previous_revision.clone())
            .unwrap_or_default();
        Ok(true)
    }

    /// Publish how the deploy ended.
    async fn announce(
        &self,
        ctx: &Context,
        event: &Envelope,
        req: Request,
        current: Option<Running>,
        outcome: DeployOutcome,
    ) -> Result<(), UpdaterError> {
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
                return Err(UpdaterError::Failed {
                    environment: req.environment,
                    why: failure.to_string(),
                });
            }
            (DeployOutcome::Held { percent }, _) => {
                return self
                    .hold_canary(
                        ctx,
                        event,
                        (&req.environment, &req.revision, &req.image),
                        percent,
                    )
                    .await;
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
        Ok(ctx.emit(&event.follow(result, Some(env))).await?)
    }

    async fn run_target(
        &self,
        target: &Environment<'_>,
        event: &Envelope,
        req: &Request,
        lock: &Lock,
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
            approved: req.approved,
            fence: Some(lock),
        };
        if req.is_rollback() {
            target.roll_back(&deploy).await
        } else {
            target.deploy(&deploy).await
        }
    }

    /// Refused when `image` may not be deployed for `project` into `environment`
    /// (another registry, another project's repository, no digest): see
    /// `image_ref::deployable`.
    fn refuse_foreign(
        &self,
        project: &str,
        image: &str,
        environment: &str,
    ) -> Result<(), UpdaterError> {
        ferry_shared::image_ref::deployable(&self.cfg, project, image)
            .map(drop)
            .map_err(|refused| UpdaterError::Refused {
                environment: environment.to_owned(),
                why: refused.to_string(),
            })
    }

    /// A newer run was requested for the environment: this one is not deployed.
    async fn superseded(
        &self,
        ctx: &Context,
        event: &Envelope,
        req: Request,
        newer: uuid::Uuid,
    ) -> Result<(), UpdaterError> {
        tracing::info!(environment = %req.environment, newer = %newer, "superseded by a newer deploy request");
        let e = Event::DeploySuperseded(DeploySuperseded {
            revision: req.revision,
            image: req.image,
            running_image: String::new(),
            running_run_id: newer,
        });
        Ok(ctx.emit(&event.follow(e, Some(&req.environment))).await?)
    }

    /// Hold the run for an operator's approval in `environment`.
    async fn hold(
        &self,
        ctx: &Context,
        event: &Envelope,
        hold: request::Hold,
    ) -> Result<(), UpdaterError> {
        // No approval is asked for an image the project may not deploy.
        self.refuse_foreign(&event.project, &hold.image, &hold.environment)?;
        let timeout = Duration::from_secs(hold.timeout_secs);
        let request = ApprovalRequested {
            revision: hold.revision,
            image: hold.image,
            passed_in: hold.passed_in,
            expires_at: event.time
                + chrono::Duration::from_std(timeout)
                    .unwrap_or_else(|_| chrono::Duration::days(36_500)),
            canary_percent: None,
        };
        gate::place(&self.cfg, ctx, event, request, &hold.environment, timeout).await
    }
}

/// The deploy lock of `project` in `env`, waiting up to `LOCK_WAIT` for whoever holds it.
pub(crate) async fn held(
    contender: Contender,
    project: &str,
    env: &str,
) -> Result<Lock, UpdaterError> {
    contender
        .acquire(LOCK_WAIT)
        .await
        .map_err(|e| UpdaterError::Lock(e.to_string()))?
        .ok_or_else(|| UpdaterError::Busy {
            project: project.to_owned(),
            environment: env.to_owned(),
        })
}

impl StageHandler for Stage {
    type Input = DeployInput;
    type Error = UpdaterError;

    async fn run(&self, ctx: &Context, event: &Received<DeployInput>) -> Result<(), UpdaterError> {
        match request::step(&self.cfg, event, &event.input)? {
            Step::Deploy(req) => self.deploy(ctx, event, req).await,
            Step::Hold(hold) => self.hold(ctx, event, hold).await,
            Step::Scale(scale) => self.scale(ctx, event, scale).await,
            Step::Expired(request) => {
                if request.canary_percent.is_some()
                    && let Some(env) = event.environment.as_deref()
                {
                    self.abandon(event, env, &request.image).await?;
                }
                gate::expired(ctx, event, &request).await
            }
            Step::Abandon { environment, image } => self.abandon(event, &environment, &image).await,
            Step::Nothing => Ok(()),
        }
    }
}

//! rancher-updater: deploys an image into one environment.
//!
//! Takes `image.pulled.<env>` (for the project's first environment),
//! `test.passed.<env>` (promotion to the next environment) and
//! `deploy.requested.<env>` (manual deploys, rollbacks).
//!
//! One deploy per (project, environment) at a time across all replicas: a deploy holds
//! a RabbitMQ-held lock (see `ferry_shared::bus::Lock`) while it runs. A run older
//! than the one running in the environment is not deployed (`deploy.superseded`)
//! unless it is an explicit rollback: run ids are time-ordered, and the running
//! containers carry theirs in a label.
//!
//! Targets: `docker` (rolling update over plain Docker hosts, see `docker_target`) and
//! `rancher` (a Rancher 1.6 service upgrade, see `rancher_target`).

pub mod docker_target;
pub mod rancher_api;
mod rancher_target;

use docker_target::{Host, Outcome as DeployOutcome, Target};
use ferry_shared::bus::{Context, Handler, Latest, Lock, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{
    DeployStarted, DeploySucceeded, DeploySuperseded, Envelope, Event, StageFailed,
};
use ferry_shared::service::{ServiceDefaults, configured_project, not_handled};
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

/// What an event asks to deploy.
struct Request {
    environment: String,
    image: String,
    revision: String,
    rollback: bool,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    /// `None` when the event needs no deploy (an image ready in a later environment
    /// waits for promotion; a pass in the last environment ends the run).
    fn request(&self, event: &Envelope) -> Result<Option<Request>, Outcome> {
        let project = configured_project(&self.cfg, event)?;
        let env = event.environment.clone().unwrap_or_default();
        let first = project.environments.first();
        let req = |environment: String, image: &str, revision: &str, rollback| Request {
            environment,
            image: image.to_owned(),
            revision: revision.to_owned(),
            rollback,
        };
        Ok(match &event.event {
            Event::ImagePulled(p) if first == Some(&env) => {
                Some(req(env, &p.image, &p.revision, false))
            }
            Event::ImagePulled(_) => None,
            Event::TestPassed(t) => {
                let next = project
                    .environments
                    .iter()
                    .skip_while(|e| **e != env)
                    .nth(1);
                next.map(|n| req(n.clone(), &t.image, &t.revision, false))
            }
            Event::DeployRequested(r) => {
                Some(req(env, &r.image, &r.revision, r.reason == "rollback"))
            }
            _ => return Err(not_handled(SERVICE, event)),
        })
    }

    async fn deploy(&self, ctx: &Context, event: &Envelope, req: Request) -> Outcome {
        let env = req.environment.as_str();
        let Some(env_cfg) = self.cfg.environments.get(env) else {
            return Outcome::GiveUp(format!("environment `{env}` is not configured"));
        };
        let lock_name = format!("deploy.{}.{env}", event.project);
        // Record this request among the environment's recent ones, so that whoever
        // holds the lock next can see the newest run requested.
        let latest = match Latest::open(&self.cfg.broker, &lock_name).await {
            Ok(l) => l,
            Err(e) => return Outcome::RetryLater(format!("cannot record the deploy request: {e}")),
        };
        if !req.rollback
            && let Err(e) = latest.offer(event.run_id).await
        {
            return Outcome::RetryLater(format!("cannot record the deploy request: {e}"));
        }
        let lock = match Lock::acquire(&self.cfg.broker, &lock_name, LOCK_WAIT).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                return Outcome::RetryLater(format!(
                    "another deploy of {} to {env} is still running",
                    event.project
                ));
            }
            Err(e) => return Outcome::RetryLater(format!("cannot take the deploy lock: {e}")),
        };
        if !req.rollback
            && let Ok(Some(newest)) = latest.newest().await
            && docker_target::newer(newest, event.run_id)
        {
            drop(lock);
            return self.superseded(ctx, event, req, newest).await;
        }
        let started = event.follow(
            Event::DeployStarted(DeployStarted {
                revision: req.revision.clone(),
                image: req.image.clone(),
                previous_image: None,
            }),
            Some(env),
        );
        if let Err(retry) = ctx.publish(&started).await {
            return retry;
        }
        let outcome = if env_cfg.target == "docker" {
            let hosts: Vec<Host> = env_cfg
                .hosts
                .iter()
                .filter_map(|h| {
                    self.cfg.docker_hosts.get(h).map(|d| Host {
                        name: h.clone(),
                        url: d.url.clone(),
                    })
                })
                .collect();
            let project = &self.cfg.projects[&event.project];
            let target = Target {
                project: &event.project,
                environment: env,
                image: &req.image,
                revision: &req.revision,
                run_id: event.run_id,
                container: &project.container,
            };
            match docker_target::deploy(&hosts, &target, req.rollback).await {
                Ok(o) => o,
                Err(e) => return Outcome::RetryLater(format!("cannot reach a host of {env}: {e}")),
            }
        } else {
            let Some(r) = &env_cfg.rancher else {
                return Outcome::GiveUp(format!(
                    "environment `{env}` has target rancher but no [environments.{env}.rancher] section"
                ));
            };
            match rancher_target::deploy(r, &req.image).await {
                Ok(o) => o,
                Err(rancher_target::Retry(why)) => return Outcome::RetryLater(why),
            }
        };
        drop(lock);
        let result = match outcome {
            DeployOutcome::Succeeded {
                previous_image,
                hosts,
            } => {
                tracing::info!(environment = env, revision = %req.revision, "deployed");
                Event::DeploySucceeded(DeploySucceeded {
                    revision: req.revision,
                    image: req.image,
                    previous_image,
                    hosts,
                })
            }
            DeployOutcome::Failed { reason } => {
                tracing::warn!(environment = env, "deploy failed: {reason}");
                Event::DeployFailed(StageFailed {
                    service: SERVICE.to_owned(),
                    reason,
                    attempts: ctx.attempt,
                    failed_event_id: event.event_id,
                    failed_kind: event.kind().to_owned(),
                })
            }
            DeployOutcome::Superseded { running } => Event::DeploySuperseded(DeploySuperseded {
                revision: req.revision,
                image: req.image,
                running_image: running.image,
                running_run_id: running.run_id.unwrap_or_default(),
            }),
        };
        ctx.publish_all(&[event.follow(result, Some(env))]).await
    }
}

impl Stage {
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
        match self.request(&event) {
            Ok(Some(req)) => self.deploy(&ctx, &event, req).await,
            Ok(None) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}

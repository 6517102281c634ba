//! rancher-updater: deploys an image into one environment.
//!
//! Takes `image.pulled.<env>` (for the project's first environment),
//! `test.passed.<env>` (promotion to the next environment) and
//! `deploy.requested.<env>` (manual deploys, rollbacks). Placeholder until the deploy
//! issue: it reports the deploy as succeeded without touching any host.

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployStarted, DeploySucceeded, Envelope, Event};
use ferry_shared::service::{ServiceDefaults, configured_project, not_handled};
use std::sync::Arc;

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

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    /// Which environment this event asks to deploy, and what image; `None` when the
    /// event needs no deploy (an image ready in a later environment waits for promotion).
    fn target(&self, event: &Envelope) -> Result<Option<(String, String, String)>, Outcome> {
        let project = configured_project(&self.cfg, event)?;
        let env = event.environment.clone().unwrap_or_default();
        let first = project.environments.first();
        Ok(match &event.event {
            Event::ImagePulled(p) if first == Some(&env) => {
                Some((env, p.image.clone(), p.revision.clone()))
            }
            Event::ImagePulled(_) => None,
            Event::TestPassed(t) => {
                let next = project
                    .environments
                    .iter()
                    .skip_while(|e| **e != env)
                    .nth(1);
                next.map(|n| (n.clone(), t.image.clone(), t.revision.clone()))
            }
            Event::DeployRequested(r) => Some((env, r.image.clone(), r.revision.clone())),
            _ => return Err(not_handled(SERVICE, event)),
        })
    }
}

impl Handler for Stage {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        let (env, image, revision) = match self.target(&event) {
            Ok(Some(t)) => t,
            Ok(None) => return Outcome::Done,
            Err(outcome) => return outcome,
        };
        let started = event.follow(
            Event::DeployStarted(DeployStarted {
                revision: revision.clone(),
                image: image.clone(),
                previous_image: None,
            }),
            Some(&env),
        );
        let succeeded = event.follow(
            Event::DeploySucceeded(DeploySucceeded {
                revision,
                image,
                previous_image: None,
                hosts: vec![],
            }),
            Some(&env),
        );
        tracing::info!(environment = %env, "deploying (placeholder)");
        ctx.publish_all(&[started, succeeded]).await
    }
}

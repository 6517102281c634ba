//! notifier: consumes the runs' outcomes (`*.failed.#`, `deploy.succeeded.#`,
//! `deploy.started.#`, `deploy.superseded.#`, `deploy.rolled_back.#`). Placeholder until the
//! notifier issue: it logs them.

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event};
use ferry_shared::service::ServiceDefaults;
use std::sync::Arc;

pub const SERVICE: &str = "notifier";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9607,
    prefetch: 16,
    handler_timeout_secs: 120,
    shutdown_grace_secs: 10,
};

pub struct Stage;

impl Stage {
    pub fn new(_cfg: Arc<FerryConfig>) -> Self {
        Self
    }
}

impl Handler for Stage {
    async fn handle(&self, _ctx: Context, event: Envelope) -> Outcome {
        match &event.event {
            Event::DeploySucceeded(d) => tracing::info!(
                project = %event.project, environment = ?event.environment, revision = %d.revision,
                "run reached {}", event.routing_key()
            ),
            other => {
                tracing::info!(project = %event.project, "run event {}: {:?}", event.routing_key(), other)
            }
        }
        Outcome::Done
    }
}

//! puller: consumes `image.pushed`, publishes `image.pulled.<env>` once every host of
//! that environment has the image (or `pull.failed`).
//!
//! Placeholder until the pull issue: it reports every environment ready at once.

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePulled};
use ferry_shared::service::{ServiceDefaults, configured_project, not_handled};
use std::sync::Arc;

pub const SERVICE: &str = "puller";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9604,
    prefetch: 4,
    handler_timeout_secs: 600,
    shutdown_grace_secs: 25,
};

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }
}

impl Handler for Stage {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        let Event::ImagePushed(pushed) = &event.event else {
            return not_handled(SERVICE, &event);
        };
        let project = match configured_project(&self.cfg, &event) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let pulled: Vec<Envelope> = project
            .environments
            .iter()
            .map(|env| {
                let ready = ImagePulled {
                    revision: pushed.revision.clone(),
                    image: pushed.image.clone(),
                    hosts: vec![],
                };
                event.follow(Event::ImagePulled(ready), Some(env))
            })
            .collect();
        ctx.publish_all(&pulled).await
    }
}

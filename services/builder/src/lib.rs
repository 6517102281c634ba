//! builder: consumes `source.changed`, publishes `image.built` (or `build.failed`).
//!
//! Placeholder until the build issue: it names the image the build will produce and
//! passes the run on, so the pipeline can be exercised end to end.

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImageBuilt};
use ferry_shared::service::{ServiceDefaults, configured_project, not_handled};
use std::sync::Arc;

pub const SERVICE: &str = "builder";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

/// One build at a time per process: builds are CPU- and disk-bound; scale with replicas.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9602,
    prefetch: 1,
    handler_timeout_secs: 1500,
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
        let Event::SourceChanged(source) = &event.event else {
            return not_handled(SERVICE, &event);
        };
        let project = match configured_project(&self.cfg, &event) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let registry = self
            .cfg
            .registry
            .as_ref()
            .map(|r| r.address.as_str())
            .unwrap_or("localhost");
        let built = event.follow(
            Event::ImageBuilt(ImageBuilt {
                revision: source.revision.clone(),
                image: format!("{registry}/{}:{}", project.image, source.revision),
                config_commit: None,
            }),
            None,
        );
        ctx.publish_all(&[built]).await
    }
}

//! pusher: consumes `image.built`, publishes `image.pushed` (or `push.failed`).
//!
//! Placeholder until the push issue: it passes the run on with a digest derived from
//! the image name, so later stages already deploy "by digest".

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePushed};
use ferry_shared::service::{ServiceDefaults, not_handled};
use std::sync::Arc;

pub const SERVICE: &str = "pusher";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9603,
    prefetch: 4,
    handler_timeout_secs: 600,
    shutdown_grace_secs: 25,
};

pub struct Stage;

impl Stage {
    pub fn new(_cfg: Arc<FerryConfig>) -> Self {
        Self
    }
}

impl Handler for Stage {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        let Event::ImageBuilt(built) = &event.event else {
            return not_handled(SERVICE, &event);
        };
        let digest =
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, built.image.as_bytes()).simple();
        let pushed = event.follow(
            Event::ImagePushed(ImagePushed {
                revision: built.revision.clone(),
                image: format!("{}@sha256:{digest}{digest}", built.image),
            }),
            None,
        );
        ctx.publish_all(&[pushed]).await
    }
}

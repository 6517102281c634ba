//! tester: consumes `deploy.succeeded.<env>`, publishes `test.passed.<env>` or
//! `test.failed.<env>`. Placeholder until the test-gate issue: every deploy passes.

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, TestReport};
use ferry_shared::service::{ServiceDefaults, not_handled};
use std::sync::Arc;

pub const SERVICE: &str = "tester";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9606,
    prefetch: 2,
    handler_timeout_secs: 900,
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
        let Event::DeploySucceeded(deployed) = &event.event else {
            return not_handled(SERVICE, &event);
        };
        let passed = event.follow(
            Event::TestPassed(TestReport {
                revision: deployed.revision.clone(),
                image: deployed.image.clone(),
                checks: vec![],
            }),
            event.environment.as_deref(),
        );
        ctx.publish_all(&[passed]).await
    }
}

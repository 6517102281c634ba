//! The builder and the pusher in-process on a project the builder builds (see
//! `ferry_testkit::build`): builds that must reach the registry.

use ferry_shared::config::FerryConfig;
use ferry_testkit::{amqp_url, spawn_stage};
use std::sync::Arc;

pub use ferry_testkit::build::*;
pub use ferry_testkit::project::*;

/// A configured project with its builder and pusher running and a tap on its events.
pub struct Running {
    pub setup: Setup,
    pub tap: ferry_testkit::Tap,
    pub stages: Stages,
}

pub async fn start_build(source: &str, registry_password: &str, dockerfile: &str) -> Running {
    let setup = setup(source, registry_password, dockerfile);
    let tap = ferry_testkit::Tap::new(&amqp_url(), &setup.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&setup.cfg).await;
    Running { setup, tap, stages }
}

pub struct Stages {
    stages: Vec<ferry_testkit::RunningStage>,
    /// Metrics of the started stages; the pusher's is last.
    pub metrics: Vec<std::sync::Arc<ferry_shared::metrics::Metrics>>,
}

pub async fn start_stages(cfg: &Arc<FerryConfig>) -> Stages {
    start(cfg, true).await
}

/// The pusher alone (for tests that run the builder as a process).
pub async fn start_pusher(cfg: &Arc<FerryConfig>) -> Stages {
    start(cfg, false).await
}

async fn start(cfg: &Arc<FerryConfig>, with_builder: bool) -> Stages {
    let mut stages = Vec::new();
    if with_builder {
        stages.push(
            spawn_stage(
                cfg,
                builder::spec(),
                builder::DEFAULTS,
                builder::Stage::new(cfg.clone()),
            )
            .await,
        );
    }
    stages.push(
        spawn_stage(
            cfg,
            pusher::spec(),
            pusher::DEFAULTS,
            pusher::Stage::new(cfg.clone()),
        )
        .await,
    );
    let metrics = stages.iter().map(|s| s.metrics.clone()).collect();
    Stages { stages, metrics }
}

impl Stages {
    pub async fn stop(self) {
        for s in self.stages {
            s.stop().await;
        }
    }
}

/// The workspace's `builder` binary, which `cargo build --workspace --bins` (as
/// tests/run.sh runs it first) puts next to the directory of this test executable.
pub fn builder_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("builder");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

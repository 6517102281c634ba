//! Shared by the builder's tests: an SVN or git code repository, the ops' config repo,
//! a configuration using the test run's Docker host and registry (all from
//! `ferry_testkit`), and the builder started in-process. Tests that need the pusher
//! too live in the end-to-end crate (`tests/e2e`).

#![allow(dead_code)]

use ferry_shared::config::FerryConfig;
use ferry_testkit::amqp_url;
use std::sync::Arc;

pub use ferry_testkit::build::*;
pub use ferry_testkit::project::*;

/// A configured project with its builder running and a tap on its events.
pub struct Running {
    pub setup: Setup,
    pub tap: ferry_testkit::Tap,
    pub stages: Stages,
}

pub async fn start_build(source: &str, registry_password: &str, dockerfile: &str) -> Running {
    let setup = setup(source, registry_password, dockerfile);
    // The tap also gives the builder's events a queue to land in (they are published
    // as mandatory, and no pusher runs here).
    let tap = ferry_testkit::Tap::new(&amqp_url(), &setup.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&setup.cfg).await;
    Running { setup, tap, stages }
}

pub struct Stages {
    stages: Vec<ferry_testkit::RunningStage>,
    /// Metrics of the started stages.
    pub metrics: Vec<std::sync::Arc<ferry_shared::metrics::Metrics>>,
}

/// The builder, in-process.
pub async fn start_stages(cfg: &Arc<FerryConfig>) -> Stages {
    let stages = vec![
        ferry_testkit::spawn_stage(
            cfg,
            builder::spec(),
            builder::DEFAULTS,
            builder::Stage::new(cfg.clone()),
        )
        .await,
    ];
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

//! Shared by the builder's tests: an SVN or git code repository, the ops' config repo,
//! a configuration using the test run's Docker host and registry, and the builder and
//! pusher started in-process.

#![allow(dead_code)]

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_testkit::{
    amqp_url, docker, docker_hosts, ensure_busybox_base, harness_var, unique_namespace,
};
use std::path::Path;
use std::sync::Arc;

pub use ferry_testkit::project::*;

pub struct Setup {
    pub cfg: Arc<FerryConfig>,
    pub dir: tempfile::TempDir,
    /// The same configuration as a file, for the service binaries.
    pub config_path: std::path::PathBuf,
}

pub fn setup(source: &str, registry_password: &str, dockerfile: &str) -> Setup {
    setup_with(
        source,
        &harness_var("FERRY_TEST_REGISTRY"),
        registry_password,
        dockerfile,
        "",
    )
}

/// `extra` is appended to the TOML (e.g. other broker retry settings).
pub fn setup_with(
    source: &str,
    registry: &str,
    registry_password: &str,
    dockerfile: &str,
    extra: &str,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let host = docker_hosts()[0].clone();
    ensure_busybox_base(&host).unwrap();
    let config_url = config_repo(dir.path(), dockerfile);
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [300]
        max_attempts = 3
        {extra}
        [services.builder]
        admin_listen = "127.0.0.1:0"
        [services.pusher]
        admin_listen = "127.0.0.1:0"
        [build]
        docker_host = "{host}"
        work_dir = "{work}"
        log_dir = "{logs}"
        timeout_secs = 300
        svn_username = "{svn_user}"
        svn_password = "{svn_pass}"
        [registry]
        address = "{registry}"
        username = "{reg_user}"
        password = "{registry_password}"
        [projects.shop]
        image = "ferry/shop-{ns}"
        source = {source}
        config_repo = {{ url = "{config_url}", branch = "main", path = "shop", files = {{ "env/production.env" = ".env", "nginx/site.conf" = "docker/nginx.conf" }} }}
        "#,
        amqp = amqp_url(),
        ns = unique_namespace(),
        work = dir.path().join("work").display(),
        logs = dir.path().join("logs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap());
    let config_path = dir.path().join("ferry.toml");
    std::fs::write(&config_path, &text).unwrap();
    Setup {
        cfg,
        dir,
        config_path,
    }
}

/// The `source` of a project following `/trunk/shop` of the SVN repository at `url`.
pub fn svn_source(url: &str) -> String {
    format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}")
}

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
    use ferry_testkit::spawn_stage;
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

pub async fn trigger(cfg: &FerryConfig, revision: &str) -> Envelope {
    let event = Envelope::new_run(
        "shop",
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "test".into(),
            reference: None,
            revision: revision.into(),
            author: Some("alice".into()),
            message: None,
            changed_paths: vec![],
        }),
    );
    Publisher::new(&cfg.broker, "test", None)
        .publish(&event)
        .await
        .unwrap();
    event
}

/// Pull `image` onto the second Docker host (with the registry's credentials) and run
/// `cat` of `files` in it.
pub fn read_in_image(image: &str, files: &[&str]) -> String {
    let host = docker_hosts()[1].clone();
    let cfg_dir = tempfile::tempdir().unwrap();
    let c = Some(cfg_dir.path());
    let pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD");
    docker(
        &host,
        c,
        &[
            "login",
            "-u",
            &harness_var("FERRY_TEST_REGISTRY_USER"),
            "-p",
            &pass,
            &harness_var("FERRY_TEST_REGISTRY"),
        ],
    )
    .unwrap();
    docker(&host, c, &["pull", "-q", image]).unwrap();
    let mut args = vec!["run", "--rm", "--network", "host", image, "/bin/cat"];
    args.extend_from_slice(files);
    docker(&host, c, &args).unwrap()
}

pub fn labels(image: &str) -> serde_json::Value {
    let host = docker_hosts()[1].clone();
    serde_json::from_str(
        &docker(
            &host,
            None,
            &[
                "image",
                "inspect",
                "--format",
                "{{json .Config.Labels}}",
                image,
            ],
        )
        .unwrap(),
    )
    .unwrap()
}

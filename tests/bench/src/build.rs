//! Build and push times for a small web app (busybox `FROM scratch`, code in SVN, the
//! Dockerfile and `.env` in the config repo), through the real builder and pusher:
//! cold (fresh working copy, no layer cache for the app), warm (one-line change), push.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_shared::service::StageService;
use ferry_shared::shutdown;
use ferry_testkit::project::{DOCKERFILE, config_repo, svn_commit_index, svn_project};
use ferry_testkit::{Tap, docker_hosts, ensure_busybox_base, harness_var, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Figures {
    pub cold_s: f64,
    pub warm_s: f64,
    pub push_s: f64,
}

pub async fn build_and_push(url: &str) -> anyhow::Result<Figures> {
    let host = docker_hosts()[0].clone();
    ensure_busybox_base(&host)?;
    let dir = tempfile::tempdir()?;
    let code = svn_project(dir.path(), 1);
    let config = config_repo(dir.path(), DOCKERFILE);
    let ns = unique_namespace();
    let text = format!(
        r#"
        [log]
        level = "warn"
        [broker]
        url = "{url}"
        namespace = "{ns}"
        [services.builder]
        admin_listen = "127.0.0.1:0"
        [services.pusher]
        admin_listen = "127.0.0.1:0"
        [build]
        docker_host = "{host}"
        work_dir = "{work}"
        log_dir = "{logs}"
        svn_username = "{svn_user}"
        svn_password = "{svn_pass}"
        [registry]
        address = "{registry}"
        username = "{reg_user}"
        password = "{reg_pass}"
        [projects.shop]
        image = "bench/shop-{ns}"
        source = {{ kind = "svn", url = "{code}", path = "/trunk/shop" }}
        config_repo = {{ url = "{config}", path = "shop", files = {{ "env/production.env" = ".env" }} }}
        "#,
        work = dir.path().join("work").display(),
        logs = dir.path().join("logs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
        reg_pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?);
    let mut tap = Tap::new(url, &ns, "#").await?;
    let stages = Stages::start(&cfg).await?;
    let publisher = Publisher::new(&cfg.broker, "bench", None);

    let cold = Instant::now();
    publisher.publish(&source_changed("1")).await?;
    tap.expect("image.built", Duration::from_secs(300)).await?;
    let cold_s = cold.elapsed().as_secs_f64();
    let push = Instant::now();
    tap.expect("image.pushed", Duration::from_secs(300)).await?;
    let push_s = push.elapsed().as_secs_f64();

    svn_commit_index(dir.path(), "<h1>shop, one line changed</h1>\n");
    let warm = Instant::now();
    publisher.publish(&source_changed("2")).await?;
    tap.expect("image.built", Duration::from_secs(300)).await?;
    let warm_s = warm.elapsed().as_secs_f64();
    tap.expect("image.pushed", Duration::from_secs(300)).await?;

    stages.stop().await?;
    Ok(Figures {
        cold_s,
        warm_s,
        push_s,
    })
}

/// The builder (with its defaults for the configured engines) and the pusher, as
/// services on the real broker.
pub struct Stages {
    trigger: shutdown::ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<Result<(), ferry_shared::service::ServiceError>>>,
}

impl Stages {
    pub async fn start(cfg: &Arc<FerryConfig>) -> anyhow::Result<Self> {
        let (trigger, stop) = shutdown::channel();
        let b = StageService::bind(
            cfg,
            builder::spec(),
            builder::defaults(cfg, builder::DEFAULTS),
            builder::Stage::new(cfg.clone()),
        )
        .await?;
        let p = StageService::bind(
            cfg,
            pusher::spec(),
            pusher::DEFAULTS,
            pusher::Stage::new(cfg.clone()),
        )
        .await?;
        let s = stop.clone();
        let tasks = vec![
            tokio::spawn(async move { b.run_until_stopped(s.wait_owned()).await }),
            tokio::spawn(async move { p.run_until_stopped(stop.wait_owned()).await }),
        ];
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Self { trigger, tasks })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.trigger();
        for t in self.tasks {
            t.await??;
        }
        Ok(())
    }
}

fn source_changed(revision: &str) -> Envelope {
    Envelope::new_run(
        "shop",
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "bench".into(),
            reference: None,
            revision: revision.into(),
            author: None,
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

//! Shared by the builder's tests: an SVN or git code repository, the ops' config repo,
//! a configuration using the test run's Docker host and registry, and the builder and
//! pusher started in-process.

#![allow(dead_code)]

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_shared::service::StageService;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use ferry_testkit::{
    amqp_url, docker, docker_hosts, ensure_busybox_base, harness_var, unique_namespace,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub const DB_PASSWORD: &str = "prod-db-pa55word-7f3a";

pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn svn(dir: &Path, args: &[&str]) -> String {
    let user = harness_var("FERRY_TEST_SVN_USER");
    let pass = harness_var("FERRY_TEST_SVN_PASSWORD");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--username",
        &user,
        "--password",
        &pass,
        "--non-interactive",
        "--no-auth-cache",
    ]);
    run(dir, "svn", &all)
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=Ops", "-c", "user.email=ops@example.com"];
    all.extend_from_slice(args);
    run(dir, "git", &all)
}

/// The ops-owned config repo: Dockerfile, production .env, nginx config.
pub fn config_repo(root: &Path, dockerfile: &str) -> String {
    let dir = root.join("config-repo");
    std::fs::create_dir_all(dir.join("shop/env")).unwrap();
    std::fs::create_dir_all(dir.join("shop/nginx")).unwrap();
    std::fs::write(dir.join("shop/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("shop/env/production.env"),
        format!("APP_ENV=production\nDB_PASSWORD={DB_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("shop/nginx/site.conf"),
        "server { listen 18080; }\n",
    )
    .unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "config"]);
    format!("file://{}", dir.display())
}

pub const DOCKERFILE: &str = "FROM ferry-test/busybox:1\nARG FERRY_REVISION\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo revision=$FERRY_REVISION > /app/REVISION\"]\nCMD [\"/bin/cat\", \"/app/index.html\"]\n";

/// An SVN repository whose /trunk/shop has `commits` revisions of index.html.
pub fn svn_project(root: &Path, commits: u32) -> String {
    let name = format!("b{}", &unique_namespace()[1..9]);
    let script = harness_var("FERRY_TEST_SVN_REPO_SCRIPT");
    let url = run(root, "bash", &[&script, "create", &name]);
    svn(root, &["checkout", "-q", &url, "wc"]);
    let wc = root.join("wc");
    std::fs::create_dir_all(wc.join("trunk/shop")).unwrap();
    std::fs::write(wc.join("trunk/shop/.dockerignore"), "notes.txt\n").unwrap();
    std::fs::write(wc.join("trunk/shop/notes.txt"), "not for the image\n").unwrap();
    for i in 1..=commits {
        std::fs::write(
            wc.join("trunk/shop/index.html"),
            format!("<h1>shop r{i}</h1>\n"),
        )
        .unwrap();
        if i == 1 {
            svn(&wc, &["add", "-q", "trunk"]);
        }
        svn(&wc, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    url
}

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

pub struct Stages {
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
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
    use std::sync::atomic::Ordering::Relaxed;
    let (trigger, stop) = shutdown::channel();
    let mut tasks = Vec::new();
    let mut metrics = Vec::new();
    if with_builder {
        let b = StageService::bind(
            cfg,
            builder::spec(),
            builder::DEFAULTS,
            builder::Stage::new(cfg.clone()),
        )
        .await
        .unwrap();
        metrics.push(b.metrics.clone());
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            b.run_until_stopped(s.wait_owned()).await.unwrap()
        }));
    }
    let p = StageService::bind(
        cfg,
        pusher::spec(),
        pusher::DEFAULTS,
        pusher::Stage::new(cfg.clone()),
    )
    .await
    .unwrap();
    metrics.push(p.metrics.clone());
    tasks.push(tokio::spawn(async move {
        p.run_until_stopped(stop.wait_owned()).await.unwrap()
    }));
    let ready = ferry_testkit::wait_until(Duration::from_secs(10), || async {
        metrics.iter().all(|m| m.broker_connected.load(Relaxed))
    })
    .await;
    assert!(ready, "the stages did not connect");
    Stages {
        trigger,
        tasks,
        metrics,
    }
}

impl Stages {
    pub async fn stop(self) {
        self.trigger.trigger();
        for t in self.tasks {
            t.await.unwrap();
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

//! Real builds: svnserve or git for the code, a git config repo, the Docker Engine,
//! and the registry with htpasswd auth. The images are pulled onto another Docker host
//! and run there, to read what really ended up inside.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_shared::service::StageService;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use ferry_testkit::{
    BUSYBOX_BASE, Tap, amqp_url, docker, docker_hosts, ensure_busybox_base, harness_var,
    unique_namespace,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const DB_PASSWORD: &str = "prod-db-pa55word-7f3a";

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
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

fn svn(dir: &Path, args: &[&str]) -> String {
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

fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=Ops", "-c", "user.email=ops@example.com"];
    all.extend_from_slice(args);
    run(dir, "git", &all)
}

/// The ops-owned config repo: Dockerfile, production .env, nginx config.
fn config_repo(root: &Path, dockerfile: &str) -> String {
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

const DOCKERFILE: &str = "FROM ferry-test/busybox:1\nARG FERRY_REVISION\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo revision=$FERRY_REVISION > /app/REVISION\"]\nCMD [\"/bin/cat\", \"/app/index.html\"]\n";

/// An SVN repository whose /trunk/shop has `commits` revisions of index.html.
fn svn_project(root: &Path, commits: u32) -> String {
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

struct Setup {
    cfg: Arc<FerryConfig>,
    dir: tempfile::TempDir,
}

fn setup(source: &str, registry_password: &str, dockerfile: &str) -> Setup {
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
        registry = harness_var("FERRY_TEST_REGISTRY"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap());
    Setup { cfg, dir }
}

struct Stages {
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start_stages(cfg: &Arc<FerryConfig>) -> Stages {
    let (trigger, stop) = shutdown::channel();
    let b = StageService::bind(
        cfg,
        builder::spec(),
        builder::DEFAULTS,
        builder::Stage::new(cfg.clone()),
    )
    .await
    .unwrap();
    let p = StageService::bind(
        cfg,
        pusher::spec(),
        pusher::DEFAULTS,
        pusher::Stage::new(cfg.clone()),
    )
    .await
    .unwrap();
    let (bm, pm) = (b.metrics.clone(), p.metrics.clone());
    let tasks = vec![
        tokio::spawn({
            let s = stop.clone();
            async move { b.run_until_stopped(s.wait_owned()).await.unwrap() }
        }),
        tokio::spawn(async move { p.run_until_stopped(stop.wait_owned()).await.unwrap() }),
    ];
    let ready = ferry_testkit::wait_until(Duration::from_secs(10), || async {
        use std::sync::atomic::Ordering::Relaxed;
        bm.broker_connected.load(Relaxed) && pm.broker_connected.load(Relaxed)
    })
    .await;
    assert!(ready, "builder and pusher did not connect");
    Stages { trigger, tasks }
}

impl Stages {
    async fn stop(self) {
        self.trigger.trigger();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

async fn trigger(cfg: &FerryConfig, revision: &str) -> Envelope {
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
fn read_in_image(image: &str, files: &[&str]) -> String {
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

fn labels(image: &str) -> serde_json::Value {
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

#[tokio::test]
async fn svn_revision_5_becomes_image_5_in_the_registry_with_the_ops_config_inside() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 5);
    let s = setup(
        &format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}"),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    );
    let mut tap = Tap::new(&amqp_url(), &s.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&s.cfg).await;
    let started = trigger(&s.cfg, "5").await;

    let built = tap
        .expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImageBuilt(b) = &built.event else {
        panic!()
    };
    let registry = harness_var("FERRY_TEST_REGISTRY");
    assert_eq!(
        b.image,
        format!("{registry}/{}:5", s.cfg.projects["shop"].image)
    );
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    assert!(
        p.image.starts_with(&format!("{}@sha256:", b.image)),
        "{}",
        p.image
    );
    assert_eq!(pushed.run_id, started.run_id);

    // Inside the image: revision 5's code, the build arg, the config repo's files.
    let content = read_in_image(
        &p.image,
        &[
            "/app/index.html",
            "/app/REVISION",
            "/app/.env",
            "/app/docker/nginx.conf",
        ],
    );
    assert!(content.contains("<h1>shop r5</h1>"), "{content}");
    assert!(content.contains("revision=5"), "{content}");
    assert!(
        content.contains(&format!("DB_PASSWORD={DB_PASSWORD}")),
        "{content}"
    );
    assert!(content.contains("listen 18080"), "{content}");
    let ignored = std::process::Command::new("docker")
        .args([
            "-H",
            &docker_hosts()[1],
            "run",
            "--rm",
            "--network",
            "host",
            &p.image,
            "/bin/cat",
            "/app/notes.txt",
        ])
        .output()
        .unwrap();
    assert!(
        !ignored.status.success(),
        ".dockerignore'd file is in the image"
    );

    let l = labels(&p.image);
    assert_eq!(l["org.opencontainers.image.revision"], "5");
    assert_eq!(l["io.ferry.run-id"], started.run_id.to_string());
    assert_eq!(
        l["io.ferry.config-commit"].as_str().unwrap(),
        b.config_commit.as_deref().unwrap()
    );
    assert!(l["org.opencontainers.image.created"].is_string());

    // The production password is in the image, and nowhere else.
    let log = std::fs::read_to_string(b.build_log.as_ref().unwrap()).unwrap();
    assert!(log.contains("Step 1/"), "{log}");
    assert!(!log.contains(DB_PASSWORD));
    for e in [&built, &pushed] {
        assert!(!String::from_utf8_lossy(&e.to_json()).contains(DB_PASSWORD));
    }
    assert!(!format!("{l}").contains(DB_PASSWORD));
    stages.stop().await;
    drop(s.dir);
}

#[tokio::test]
async fn a_failing_run_step_fails_the_build_naming_the_step() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let broken = "FROM ferry-test/busybox:1\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo compiling; echo missing dependency >&2; exit 3\"]\n";
    let s = setup(
        &format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}"),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        broken,
    );
    let mut tap = Tap::new(&amqp_url(), &s.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&s.cfg).await;
    trigger(&s.cfg, "1").await;
    let failed = tap
        .expect("build.failed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::BuildFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("build step failed: Step 3/") && f.reason.contains(": RUN"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("missing dependency"), "{}", f.reason);
    assert!(f.reason.contains("non-zero code: 3"), "{}", f.reason);
    assert_eq!(f.attempts, 1, "a broken Dockerfile must not be retried");
    stages.stop().await;
}

#[tokio::test]
async fn a_wrong_registry_password_fails_the_push_at_once_naming_authentication() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let s = setup(
        &format!("{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\" }}"),
        "wrong-password-123",
        DOCKERFILE,
    );
    let mut tap = Tap::new(&amqp_url(), &s.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&s.cfg).await;
    trigger(&s.cfg, "1").await;
    let failed = tap
        .expect("push.failed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::PushFailed(f) = &failed.event else {
        panic!()
    };
    assert!(f.reason.contains("refused the credentials"), "{}", f.reason);
    assert_eq!(f.attempts, 1, "authentication failures must not be retried");
    assert!(!f.reason.contains("wrong-password-123"));
    stages.stop().await;
}

#[tokio::test]
async fn a_git_commit_is_built_at_exactly_that_sha() {
    let root = tempfile::tempdir().unwrap();
    let code = root.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    git(&code, &["init", "-q", "-b", "main"]);
    std::fs::write(code.join("index.html"), "<h1>first</h1>\n").unwrap();
    git(&code, &["add", "."]);
    git(&code, &["commit", "-q", "-m", "first"]);
    let first = git(&code, &["rev-parse", "HEAD"]);
    std::fs::write(code.join("index.html"), "<h1>second</h1>\n").unwrap();
    git(&code, &["commit", "-q", "-am", "second"]);
    let s = setup(
        &format!("{{ kind = \"git\", url = \"file://{}\" }}", code.display()),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    );
    let mut tap = Tap::new(&amqp_url(), &s.cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stages = start_stages(&s.cfg).await;
    trigger(&s.cfg, &first).await;
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    assert!(
        p.image.contains(&format!(":{first}@sha256:")),
        "{}",
        p.image
    );
    let content = read_in_image(&p.image, &["/app/index.html"]);
    assert_eq!(content, "<h1>first</h1>", "built the wrong commit");
    stages.stop().await;
}

//! A project the builder builds, as the builder's and the end-to-end tests set it up:
//! its configuration on the test run's Docker host and registry (code in SVN or git, the
//! ops' config repo in git), a trigger, and what ended up in its images.

use crate::project::{config_repo, git};
use crate::{amqp_url, docker, docker_hosts, ensure_busybox_base, harness_var, unique_namespace};
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use std::path::Path;
use std::sync::Arc;

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

/// Start a run of `shop` at `revision` (a `source.changed` as an SVN commit sends it).
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
            config_change: None,
            committed: None,
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

/// A `source.changed` of `shop` as an operator or a push would send it.
pub fn changed(revision: &str, reference: Option<&str>) -> SourceChanged {
    SourceChanged {
        source: "manual".into(),
        repository: "test".into(),
        reference: reference.map(str::to_owned),
        revision: revision.into(),
        author: Some("mallory".into()),
        message: None,
        changed_paths: vec![],
        config_change: None,
        committed: None,
    }
}

/// Publish `event` as the first event of a new run of `shop`.
pub async fn publish(s: &Setup, event: SourceChanged) -> Envelope {
    let e = Envelope::new_run("shop", Event::SourceChanged(event));
    Publisher::new(&s.cfg.broker, "test", None)
        .publish(&e)
        .await
        .unwrap();
    e
}

/// A git repository: `main` with commits `one` and `two`, a branch `side` off `one`
/// with commit `side`, and tags `v1` (annotated, on `one`).
pub struct Repo {
    pub url: String,
    pub one: String,
    pub two: String,
    pub side: String,
}

pub fn repo(root: &Path) -> Repo {
    let code = root.join("code");
    std::fs::create_dir_all(&code).unwrap();
    git(&code, &["init", "-q", "-b", "main"]);
    std::fs::write(code.join("index.html"), "<h1>one</h1>\n").unwrap();
    git(&code, &["add", "."]);
    git(&code, &["commit", "-q", "-m", "one"]);
    let one = git(&code, &["rev-parse", "HEAD"]);
    git(&code, &["tag", "-a", "v1", "-m", "v1"]);
    git(&code, &["checkout", "-q", "-b", "side"]);
    std::fs::write(code.join("index.html"), "<h1>side</h1>\n").unwrap();
    git(&code, &["commit", "-q", "-am", "side"]);
    let side = git(&code, &["rev-parse", "HEAD"]);
    git(&code, &["checkout", "-q", "main"]);
    std::fs::write(code.join("index.html"), "<h1>two</h1>\n").unwrap();
    git(&code, &["commit", "-q", "-am", "two"]);
    let two = git(&code, &["rev-parse", "HEAD"]);
    Repo {
        url: format!("file://{}", code.display()),
        one,
        two,
        side,
    }
}

/// A git `source` building `main` and tags `v*`.
pub fn git_source(url: &str) -> String {
    format!("{{ kind = \"git\", url = \"{url}\", branches = [\"main\"], tags = [\"v*\"] }}")
}

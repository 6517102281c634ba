//! The staging gate's fixture: a project on two Docker daemons (staging on h1,
//! production on h2), its configuration, images and what it serves.

use super::stack::Stack;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePulled};
use ferry_testkit::{
    amqp_url, docker, docker_hosts, free_port, harness_var, http_request, unique_namespace,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const TOKEN: &str = "alice-token-0123456789";
// Generous: the whole suite shares two cores with three Docker daemons.
pub const WAIT: Duration = Duration::from_secs(90);

pub struct Gate {
    pub ns: String,
    pub project: String,
    pub staging: [u16; 2],
    pub production: [u16; 2],
    /// More keys of `[environments.staging]`.
    pub staging_keys: String,
    /// More blue/green pairs for staging after `staging` (room for `ferry scale`).
    pub staging_spare: Vec<u16>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Self {
        let ns = unique_namespace();
        Self {
            project: format!("gate{}", &ns[1..9]),
            ns,
            staging: [free_port(), free_port()],
            production: [free_port(), free_port()],
            staging_keys: String::new(),
            staging_spare: Vec::new(),
        }
    }

    /// `production`: extra keys of `[environments.production]`; `checks`: the plan's
    /// `[[checks]]` tables.
    pub fn config(&self, production: &str, checks: &str) -> Arc<FerryConfig> {
        let source = r#"{ kind = "git", url = "https://example.com/gate.git" }"#;
        self.config_with(production, checks, source, "")
    }

    /// `source`: the project's `source`; `tables`: more top-level tables.
    pub fn config_with(
        &self,
        production: &str,
        checks: &str,
        source: &str,
        tables: &str,
    ) -> Arc<FerryConfig> {
        let hosts = docker_hosts();
        let mut text = format!(
            r#"
            [broker]
            url = "{amqp}"
            namespace = "{ns}"
            retry_delays_ms = [500]
            max_attempts = 3
            [registry]
            address = "{registry}"
            username = "{user}"
            password = "{pass}"
            [operators.alice]
            token = "{TOKEN}"
            can = ["view", "deploy", "approve", "rollback", "scale"]
            [docker_hosts.h1]
            url = "{h1}"
            [docker_hosts.h2]
            url = "{h2}"
            [environments.staging]
            hosts = ["h1"]
            ports = [{s1}, {s2}{spare}]
            {staging_keys}
            [environments.production]
            hosts = ["h2"]
            ports = [{p1}, {p2}]
            {production}
            [projects.{project}]
            image = "gate/{ns}"
            environments = ["staging", "production"]
            source = {source}
            [projects.{project}.container]
            command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
            # Generous: the whole suite shares two cores with three Docker daemons.
            health_timeout_secs = 20
            [projects.{project}.tests]
            wait_until_healthy_secs = 5
            {checks}
            {tables}
            "#,
            amqp = amqp_url(),
            ns = self.ns,
            project = self.project,
            registry = harness_var("FERRY_TEST_REGISTRY"),
            user = harness_var("FERRY_TEST_REGISTRY_USER"),
            pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
            h1 = hosts[0],
            h2 = hosts[1],
            s1 = self.staging[0],
            s2 = self.staging[1],
            p1 = self.production[0],
            p2 = self.production[1],
            staging_keys = self.staging_keys,
            spare = self
                .staging_spare
                .iter()
                .map(|p| format!(", {p}"))
                .collect::<String>(),
        );
        for svc in ferry_shared::SERVICES {
            text.push_str(&format!(
                "[services.{}]\nadmin_listen = \"127.0.0.1:0\"\n",
                svc.replace('-', "_")
            ));
            if svc == hook_receiver::SERVICE {
                text.push_str("listen = \"127.0.0.1:0\"\n");
            }
        }
        Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
    }

    /// Build and push revision `rev`: `/` answers `rev`, `/healthz` answers, and
    /// `/api/ok` answers `ok` only when `api`. Its `repo:tag@digest`.
    pub fn image(&self, rev: &str, api: bool) -> String {
        let tag = format!(
            "{}/gate/{}:{rev}",
            harness_var("FERRY_TEST_REGISTRY"),
            self.ns
        );
        let api = if api {
            " && mkdir /www/api && echo ok > /www/api/ok"
        } else {
            ""
        };
        let dockerfile = format!(
            "FROM ferry-test/busybox:1\nRUN [\"/bin/sh\", \"-c\", \"mkdir /www && echo {rev} > /www/index.html && echo ok > /www/healthz{api}\"]\n"
        );
        let by_digest =
            ferry_testkit::build_and_push(&docker_hosts()[0], &dockerfile, &tag).unwrap();
        let digest = by_digest.split_once('@').unwrap().1;
        format!("{tag}@{digest}")
    }

    /// What the environment serves on `/` (on either blue/green port).
    pub async fn serving(&self, ports: [u16; 2]) -> Option<String> {
        for port in ports {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            if let Ok((200, body)) = http_request(addr, "GET", "/", &[], b"").await {
                return Some(body.trim().to_owned());
            }
        }
        None
    }

    /// Remove every container of the project from both hosts.
    pub fn cleanup(&self) {
        for host in &docker_hosts()[..2] {
            let filter = format!("label=io.ferry.project={}", self.project);
            if let Ok(ids) = docker(host, None, &["ps", "-aq", "--filter", &filter]) {
                for id in ids.lines() {
                    let _ = docker(host, None, &["rm", "-f", id]);
                }
            }
        }
    }
}

/// Start a run at "image ready in staging" (build, push and pull are other tests').
pub async fn start_run(cfg: &FerryConfig, project: &str, rev: &str, image: &str) -> Uuid {
    let pulled = Event::ImagePulled(ImagePulled {
        revision: rev.into(),
        image: image.into(),
        hosts: vec![],
    });
    start_in_staging(cfg, project, pulled).await
}

/// A new run whose first event is `event`, in staging.
pub async fn start_in_staging(cfg: &FerryConfig, project: &str, event: Event) -> Uuid {
    let mut e = Envelope::new_run(project, event);
    e.environment = Some("staging".into());
    Publisher::new(&cfg.broker, "test", None)
        .publish(&e)
        .await
        .unwrap();
    e.run_id.into()
}

/// Run the `ferry` CLI against the stack's operator API (off the runtime's threads:
/// the API it calls runs in this process).
pub async fn ferry_as(stack: &Stack, token: &str, args: &[&str]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let ferry = exe.parent().unwrap().parent().unwrap().join("ferry");
    let mut cmd = std::process::Command::new(ferry);
    cmd.args(args)
        .env("FERRY_SERVER", format!("http://{}", stack.hooks))
        .env("FERRY_TOKEN", token)
        .env("FERRY_CONFIG", "/nonexistent");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("the ferry binary (cargo build --workspace --bins)")
}

pub async fn ferry(stack: &Stack, args: &[&str]) -> std::process::Output {
    ferry_as(stack, TOKEN, args).await
}

/// An SVN project whose revision N serves `rN` (built by the builder from SVN).
pub fn svn_web_project(root: &Path, revisions: u32) -> String {
    use ferry_testkit::project::{run, svn};
    let name = format!("g{}", &unique_namespace()[1..9]);
    let url = run(
        root,
        "bash",
        &[&harness_var("FERRY_TEST_SVN_REPO_SCRIPT"), "create", &name],
    );
    svn(root, &["checkout", "-q", &url, "wc"]);
    let app = root.join("wc/trunk/web");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        "FROM ferry-test/busybox:1\nCOPY . /www\n",
    )
    .unwrap();
    std::fs::write(app.join("healthz"), "ok\n").unwrap();
    for i in 1..=revisions {
        std::fs::write(app.join("index.html"), format!("r{i}\n")).unwrap();
        if i == 1 {
            svn(&root.join("wc"), &["add", "-q", "trunk"]);
        }
        svn(
            &root.join("wc"),
            &["commit", "-q", "-m", &format!("commit {i}")],
        );
    }
    url
}

/// `[build]` for an SVN or git project built on the first Docker host.
pub fn build_table(dir: &Path) -> String {
    format!(
        r#"
        [build]
        docker_host = "{host}"
        work_dir = "{work}"
        log_dir = "{logs}"
        svn_username = "{user}"
        svn_password = "{pass}"
        "#,
        host = docker_hosts()[0],
        work = dir.join("work").display(),
        logs = dir.join("logs").display(),
        user = harness_var("FERRY_TEST_SVN_USER"),
        pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
    )
}

/// The CLI's stdout, once it exited 0.
pub fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The run id `ferry rollback`/`deploy` printed (`... run <uuid>`).
pub fn run_id_in(stdout: &str) -> Uuid {
    stdout
        .split_whitespace()
        .find_map(|w| Uuid::parse_str(w.trim_end_matches(':')).ok())
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
}

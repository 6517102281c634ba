//! The project the chaos runs build and deploy: a busybox web app in a fresh SVN
//! repository, and one Ferry configuration (staging on the first Docker host, which is
//! also the build host; production on the second) that every service process reads.

use anyhow::{Context as _, bail};
use ferry_testkit::{docker_hosts, free_port, harness_var};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Token of the `/hooks/svn` endpoint (the driver posts what the post-commit hook would).
pub const SVN_TOKEN: &str = "chaos-svn-token-0123";
/// Path of the app inside the repository; the project follows it.
const APP: &str = "trunk/app";

pub struct Setup {
    /// Everything of this chaos run: config, logs, working copies, the event record.
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub namespace: String,
    pub project: String,
    /// `http://127.0.0.1:<port>`'s socket address of the hook-receiver.
    pub hooks: std::net::SocketAddr,
    /// Admin endpoints per service (fixed ports, so a restarted process is found again).
    pub admin: Vec<(&'static str, std::net::SocketAddr)>,
    /// Production's blue/green ports: what it serves is read there at the end.
    pub production_ports: [u16; 2],
    pub svn: SvnRepo,
}

/// The app's repository, with a working copy the driver commits from.
pub struct SvnRepo {
    pub url: String,
    /// Server-side path, read with `svnlook` for the hook payload (uuid, date).
    pub path: PathBuf,
    pub uuid: String,
    wc: PathBuf,
}

/// Where the services' RabbitMQ is: the harness's single node, or its three-node cluster
/// (every node's URL; the services get the first and the others as `broker.addresses`).
pub enum Broker {
    Single(String),
    Cluster(Vec<String>),
}

impl Broker {
    pub fn urls(&self) -> Vec<String> {
        match self {
            Broker::Single(url) => vec![url.clone()],
            Broker::Cluster(urls) => urls.clone(),
        }
    }

    fn config_lines(&self) -> String {
        match self {
            Broker::Single(url) => format!("url = \"{url}\""),
            Broker::Cluster(urls) => {
                let others: Vec<String> = urls[1..]
                    .iter()
                    .map(|u| format!("\"{}\"", host_port(u)))
                    .collect();
                format!("url = \"{}\"\naddresses = [{}]", urls[0], others.join(", "))
            }
        }
    }
}

/// `host:port` of an AMQP URL.
fn host_port(url: &str) -> &str {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

pub async fn prepare(broker: &Broker) -> anyhow::Result<Setup> {
    let namespace = format!("chaos{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let project = format!("c{}", &namespace[5..13]);
    let dir = PathBuf::from(harness_var("FERRY_TEST_STATE"))
        .join("chaos")
        .join(&namespace);
    std::fs::create_dir_all(dir.join("logs"))?;
    let hosts = docker_hosts();
    anyhow::ensure!(
        hosts.len() >= 2,
        "two Docker hosts are needed (staging, production); FERRY_TEST_DOCKER_HOSTS has {}",
        hosts.len()
    );
    // The build host needs the busybox base the app is built FROM; production pulls
    // every layer from the registry.
    let h1 = hosts[0].clone();
    tokio::task::spawn_blocking(move || ferry_testkit::ensure_busybox_base(&h1)).await??;
    let svn = SvnRepo::create(&dir, &project).await?;

    let hooks: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let admin: Vec<_> = ferry_shared::SERVICES
        .iter()
        .map(|s| {
            (
                *s,
                std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
            )
        })
        .collect();
    let production_ports = [free_port(), free_port()];
    let mut text = format!(
        r#"# Written by ferry-chaos.
[log]
level = "info,lapin=warn"
[broker]
{amqp}
namespace = "{namespace}"
heartbeat_secs = 5
connect_timeout_ms = 2000
publish_timeout_ms = 4000
reconnect_max_delay_ms = 1000
retry_delays_ms = [500, 2000, 5000]
max_attempts = 5
[hooks]
svn_token = "{SVN_TOKEN}"
[build]
docker_host = "{h1}"
work_dir = "{work}"
log_dir = "{buildlogs}"
timeout_secs = 120
svn_username = "{svn_user}"
svn_password = "{svn_pass}"
[registry]
address = "{registry}"
username = "{reg_user}"
password = "{reg_pass}"
[docker_hosts.h1]
url = "{h1}"
[docker_hosts.h2]
url = "{h2}"
[environments.staging]
hosts = ["h1"]
ports = [{s1}, {s2}]
[environments.production]
hosts = ["h2"]
ports = [{p1}, {p2}]
[projects.{project}]
image = "chaos/{namespace}"
environments = ["staging", "production"]
source = {{ kind = "svn", url = "{svn_url}", path = "/{APP}" }}
[projects.{project}.container]
command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
health_timeout_secs = 10
stop_timeout_secs = 2
[projects.{project}.tests]
wait_until_healthy_secs = 10
[[projects.{project}.tests.checks]]
url = "/healthz"
"#,
        amqp = broker.config_lines(),
        h1 = hosts[0],
        h2 = hosts[1],
        work = dir.join("work").display(),
        buildlogs = dir.join("build-logs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
        reg_pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        s1 = free_port(),
        s2 = free_port(),
        p1 = production_ports[0],
        p2 = production_ports[1],
        svn_url = svn.url,
    );
    for (svc, addr) in &admin {
        text.push_str(&format!(
            "[services.{}]\nadmin_listen = \"{addr}\"\n",
            svc.replace('-', "_")
        ));
        if *svc == "hook-receiver" {
            text.push_str(&format!("listen = \"{hooks}\"\n"));
        }
    }
    let config_path = dir.join("ferry.toml");
    // Checked here, so a bad configuration is a harness error and not seven crashes.
    ferry_shared::config::FerryConfig::from_toml_with_env(&text, &config_path)
        .map_err(|e| anyhow::anyhow!("the chaos configuration is invalid: {e}"))?;
    std::fs::write(&config_path, text)?;
    Ok(Setup {
        dir,
        config_path,
        namespace,
        project,
        hooks,
        admin,
        production_ports,
        svn,
    })
}

impl SvnRepo {
    /// A fresh repository holding the app: a Dockerfile and `www/` (`index.html`,
    /// `healthz`). Builds take a second: `FROM` the local busybox base plus one `COPY`.
    async fn create(dir: &Path, project: &str) -> anyhow::Result<Self> {
        let script = harness_var("FERRY_TEST_SVN_REPO_SCRIPT");
        let url = run(dir, "bash", &[&script, "create", project]).await?;
        let path = PathBuf::from(harness_var("FERRY_TEST_SVN_ROOT")).join(project);
        let uuid = run(dir, "svnlook", &["uuid", &path.to_string_lossy()]).await?;
        svn(dir, &["checkout", "-q", &url, "wc"]).await?;
        let wc = dir.join("wc");
        let app = wc.join(APP);
        std::fs::create_dir_all(app.join("www"))?;
        std::fs::write(
            app.join("Dockerfile"),
            "FROM ferry-test/busybox:1\nCOPY www /www\n",
        )?;
        std::fs::write(app.join("www/healthz"), "ok\n")?;
        std::fs::write(app.join("www/index.html"), "r0\n")?;
        svn(&wc, &["add", "-q", "trunk"]).await?;
        svn(&wc, &["commit", "-q", "-m", "the app"]).await?;
        Ok(Self {
            url,
            path,
            uuid,
            wc,
        })
    }

    /// Commit run `n`'s change; its revision and the `/hooks/svn` payload that the
    /// shipped post-commit hook would send for it.
    pub async fn commit(&self, n: usize) -> anyhow::Result<(u64, Vec<u8>)> {
        std::fs::write(
            self.wc.join(APP).join("www/index.html"),
            format!("run {n}\n"),
        )?;
        let out = svn(&self.wc, &["commit", "-m", &format!("chaos run {n}")]).await?;
        let rev: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("Committed revision "))
            .and_then(|r| r.trim_end_matches('.').parse().ok())
            .with_context(|| format!("no revision in the svn commit output: {out:?}"))?;
        let path = self.path.to_string_lossy();
        let date = run(
            &self.wc,
            "svnlook",
            &["date", "-r", &rev.to_string(), &path],
        )
        .await?;
        let body = serde_json::json!({
            "repository_uuid": self.uuid,
            "repository_url": self.url,
            "revision": rev,
            "author": "chaos",
            "message": format!("chaos run {n}"),
            "date": date,
            "changed_paths": [format!("/{APP}/www/index.html")],
        });
        Ok((rev, serde_json::to_vec(&body)?))
    }
}

async fn run(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn svn(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let user = harness_var("FERRY_TEST_SVN_USER");
    let pass = harness_var("FERRY_TEST_SVN_PASSWORD");
    let mut all = args.to_vec();
    all.extend([
        "--username",
        &user,
        "--password",
        &pass,
        "--non-interactive",
        "--no-auth-cache",
    ]);
    run(dir, "svn", &all).await
}

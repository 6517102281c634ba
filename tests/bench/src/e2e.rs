//! Commit → production for a small web app, with Ferry's seven services as separate
//! processes (release builds), real SVN, registry and two Docker daemons: the time of
//! each stage, Ferry's own overhead, each service's memory, and a scan of everything
//! Ferry wrote or sent for the configured secrets.

use anyhow::Context;
use ferry_shared::event::{Envelope, Event};
use ferry_testkit::project::{run, svn};
use ferry_testkit::{Tap, amqp_url, docker_hosts, free_port, harness_var, unique_namespace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 7] = ferry_shared::SERVICES;
/// Rounds of Ferry against the shell job (each: one job, then one Ferry run).
const COMPARISON_ROUNDS: usize = 5;
const DB_PASSWORD: &str = "e2e-fake-prod-pa55word-5d2e";
/// A generated secret under a key that does not say so: found by its look.
const SHORT_KEYED: &str = "Zq7Lw2Xe9Rt4Ys1Ku8Np";
/// Ordinary settings next to the secrets: they must stay readable in the build log.
const SETTINGS: [&str; 3] = ["APP_ENV=production", "DB_PORT=3306", "DB_CHARSET=utf8mb4"];
const SVN_TOKEN: &str = "e2e-svn-hook-token-7a61";
const OPERATOR_TOKEN: &str = "e2e-operator-token-000000001";
const WEBHOOK_SECRET: &str = "e2e-webhook-signing-secret-93";

pub struct Run {
    pub total_s: f64,
    /// Stage name → seconds, from the events' own times.
    pub stages: BTreeMap<String, f64>,
    /// Time spent inside Docker (build, push, pulls, container starts) and tests.
    pub external_s: f64,
}

pub struct Figures {
    pub cold: Run,
    pub warm: Run,
    pub rss_idle_mb: BTreeMap<String, f64>,
    pub rss_after_mb: BTreeMap<String, f64>,
    pub secret_leaks: usize,
    pub scanned_items: usize,
    /// Interleaved rounds, commit → production serving the commit: the old chain's
    /// shell job, and Ferry.
    pub shell_s: Vec<f64>,
    pub ferry_s: Vec<f64>,
    /// Ordinary settings the build step printed that its log does not show as written.
    pub settings_redacted: usize,
}

struct Stack {
    children: Vec<(String, Child)>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A webhook sink on loopback: every body it receives, for the secret scan.
async fn sink() -> anyhow::Result<(u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>)> {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let store = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let head: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                    .collect();
                store
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{}\n{body}", head.join("\n")));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((port, bodies))
}

pub async fn e2e() -> anyhow::Result<Figures> {
    let hosts = docker_hosts();
    ferry_testkit::ensure_busybox_base(&hosts[0])?;
    // Kept afterwards: the services' logs and build logs are worth a look.
    let dir = tempfile::Builder::new()
        .prefix("ferry-e2e.")
        .tempdir()?
        .keep();
    eprintln!("e2e: state and logs in {}", dir.display());
    let root = dir.as_path();
    let ns = unique_namespace();
    let project = format!("e2e{}", &ns[1..9]);

    // Code in SVN (with the real post-commit hook installed), ops config in git.
    let repo_name = format!("e{}", &ns[1..9]);
    let url = run(
        root,
        "bash",
        &[
            &harness_var("FERRY_TEST_SVN_REPO_SCRIPT"),
            "create",
            &repo_name,
        ],
    );
    svn(root, &["checkout", "-q", &url, "wc"]);
    let app = root.join("wc/trunk/app/public");
    std::fs::create_dir_all(&app)?;
    std::fs::write(app.join("index.html"), "<h1>e2e</h1>\n")?;
    std::fs::write(app.join("healthz"), "ok\n")?;
    svn(&root.join("wc"), &["add", "-q", "trunk"]);
    svn(&root.join("wc"), &["commit", "-q", "-m", "first"]);
    let cfg_repo = root.join("config-repo/app");
    std::fs::create_dir_all(cfg_repo.join("env"))?;
    std::fs::write(
        cfg_repo.join("Dockerfile"),
        "FROM ferry-test/busybox:1\nARG FERRY_REVISION\nCOPY public /www\nCOPY .env /app/.env\nRUN [\"/bin/sh\", \"-c\", \"echo r$FERRY_REVISION > /www/revision; cat /app/.env\"]\n",
    )?;
    std::fs::write(
        cfg_repo.join("env/production.env"),
        format!(
            "DB_PASSWORD={DB_PASSWORD}\nK={SHORT_KEYED}\n{}\n",
            SETTINGS.join("\n")
        ),
    )?;
    let git = |args: &[&str]| ferry_testkit::project::git(&root.join("config-repo"), args);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "ops"]);

    let (sink_port, bodies) = sink().await?;
    let api = free_port();
    let (s1, s2, p1, p2) = (free_port(), free_port(), free_port(), free_port());
    let mut text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [hooks]
        svn_token = "{SVN_TOKEN}"
        [operators.bench]
        token = "{OPERATOR_TOKEN}"
        can = ["view", "deploy", "approve", "rollback"]
        [build]
        docker_host = "{h1}"
        work_dir = "{work}"
        log_dir = "{logs}"
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
        image = "bench/{ns}"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "{url}", path = "/trunk/app" }}
        config_repo = {{ url = "file://{cfg}", branch = "main", path = "app", files = {{ "env/production.env" = ".env" }} }}
        [projects.{project}.container]
        command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
        [projects.{project}.tests]
        wait_until_healthy_secs = 10
        [[projects.{project}.tests.checks]]
        url = "/healthz"
        [[projects.{project}.tests.checks]]
        url = "/revision"
        body_regex = "^r[0-9]+"
        [notify]
        allow_hosts = ["127.0.0.1"]
        [notify.channels.hook]
        kind = "webhook"
        url = "http://127.0.0.1:{sink_port}/hook"
        secret = "{WEBHOOK_SECRET}"
        [[notify.routes]]
        on = ["*"]
        channels = ["hook"]
        "#,
        amqp = amqp_url(),
        h1 = hosts[0],
        h2 = hosts[1],
        work = root.join("work").display(),
        logs = root.join("buildlogs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
        reg_pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        cfg = root.join("config-repo").display(),
    );
    for s in SERVICES {
        let key = s.replace('-', "_");
        text.push_str(&format!(
            "[services.{key}]\nadmin_listen = \"127.0.0.1:0\"\n"
        ));
        if s == "hook-receiver" {
            text.push_str(&format!("listen = \"127.0.0.1:{api}\"\n"));
        }
    }
    let config_path = root.join("ferry.toml");
    std::fs::write(&config_path, &text)?;
    let svn_root = harness_var("FERRY_TEST_SVN_ROOT");
    let hooks_dir = Path::new(&svn_root).join(&repo_name);
    let hook_script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/hooks/svn-post-commit");
    std::fs::copy(&hook_script, hooks_dir.join("hooks/post-commit"))?;
    std::fs::write(
        hooks_dir.join("conf/ferry-hook.conf"),
        format!(
            "FERRY_URL=http://127.0.0.1:{api}/hooks/svn\nFERRY_TOKEN={SVN_TOKEN}\nFERRY_REPO_URL={url}\n"
        ),
    )?;

    // The tap sees every event from the start.
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await?;
    let bin = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .to_path_buf();
    let logs = root.join("service-logs");
    std::fs::create_dir_all(&logs)?;
    let mut stack = Stack { children: vec![] };
    for s in SERVICES {
        let log = std::fs::File::create(logs.join(format!("{s}.log")))?;
        let child = Command::new(bin.join(s))
            .env("FERRY_CONFIG", &config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (bench.sh builds the services)",
                    bin.join(s).display()
                )
            })?;
        stack.children.push((s.to_owned(), child));
    }
    // Idle: connected and settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = |stack: &Stack| -> BTreeMap<String, f64> {
        stack
            .children
            .iter()
            .map(|(s, c)| (s.clone(), rss_mb(c.id())))
            .collect()
    };
    let rss_idle_mb = rss(&stack);

    let cold = commit_to_prod(root, &mut tap, "cold").await?;
    let warm = commit_to_prod(root, &mut tap, "warm").await?;
    let rss_after_mb = rss(&stack);

    // Ferry against the job it replaces, interleaved, on the same hosts and registry.
    let job = crate::shell_job::Job::new(
        &root.join("wc"),
        &url,
        &root.join("config-repo/app"),
        "Dockerfile=Dockerfile env/production.env=.env",
        (hosts[0].as_str(), hosts[0].as_str(), hosts[1].as_str()),
        &format!("{}/bench/shell-{ns}", harness_var("FERRY_TEST_REGISTRY")),
        "/bin/httpd -f -p 127.0.0.1:{port} -h /www",
        "r{revision}",
    );
    let (mut shell_s, mut ferry_s) = (Vec::new(), Vec::new());
    for round in 0..COMPARISON_ROUNDS {
        shell_s.push(job.round(&format!("round {round}"))?);
        let ferry = commit_to_prod(root, &mut tap, &format!("round {round}")).await?;
        ferry_s.push(ferry.run.total_s);
    }
    drop(stack);

    // The scan: every log line, event, build log and notification, for every secret in
    // its plain, base64 and URL-encoded forms.
    let mut items: Vec<String> = Vec::new();
    for s in SERVICES {
        let text = std::fs::read_to_string(logs.join(format!("{s}.log"))).unwrap_or_default();
        items.extend(text.lines().map(str::to_owned));
    }
    items.extend(
        tap.drain(Duration::from_millis(500))
            .await
            .iter()
            .map(|e| String::from_utf8_lossy(&e.to_json()).into_owned()),
    );
    items.extend(cold.events.iter().chain(&warm.events).cloned());
    // The build step prints the .env (as a careless build script would): its secrets
    // must be scrubbed, its settings must not.
    let mut settings_redacted = 0;
    for entry in walk(&root.join("buildlogs")) {
        let log = std::fs::read_to_string(entry).unwrap_or_default();
        settings_redacted += SETTINGS.iter().filter(|s| !log.contains(*s)).count();
        items.push(log);
    }
    items.extend(
        bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    let secrets = [
        DB_PASSWORD.to_owned(),
        SHORT_KEYED.to_owned(),
        SVN_TOKEN.to_owned(),
        OPERATOR_TOKEN.to_owned(),
        WEBHOOK_SECRET.to_owned(),
        harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        harness_var("FERRY_TEST_SVN_PASSWORD"),
    ];
    let forms: Vec<String> = secrets
        .iter()
        .flat_map(|s| {
            use base64::Engine;
            [
                s.clone(),
                base64::engine::general_purpose::STANDARD.encode(s),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s),
                urlencode(s),
            ]
        })
        .collect();
    let mut secret_leaks = 0;
    for item in &items {
        for f in &forms {
            if item.contains(f.as_str()) {
                secret_leaks += 1;
                eprintln!("secret leak: {:.200}", item);
            }
        }
    }
    anyhow::ensure!(
        !bodies.lock().unwrap_or_else(|p| p.into_inner()).is_empty(),
        "no notification reached the sink: the scan would prove nothing"
    );
    Ok(Figures {
        cold: cold.run,
        warm: warm.run,
        rss_idle_mb,
        rss_after_mb,
        secret_leaks,
        scanned_items: items.len(),
        settings_redacted,
        shell_s,
        ferry_s,
    })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

struct Timed {
    run: Run,
    events: Vec<String>,
}

/// Commit a change to SVN (its post-commit hook tells Ferry) and time the run until
/// production passed its checks.
async fn commit_to_prod(root: &Path, tap: &mut Tap, label: &str) -> anyhow::Result<Timed> {
    let wc = root.join("wc");
    std::fs::write(
        wc.join("trunk/app/public/index.html"),
        format!("<h1>e2e {label}</h1>\n"),
    )?;
    let started = Instant::now();
    svn(&wc, &["commit", "-q", "-m", &format!("{label} change")]);
    let mut events: Vec<Envelope> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let run_id = loop {
        let e = tap
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
            .context("no source.changed after the commit (the SVN hook did not reach Ferry)")?;
        if let Event::SourceChanged(_) = e.event {
            let id = e.run_id;
            events.push(e);
            break id;
        }
    };
    loop {
        let e = tap
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
            .context("the run did not reach production within 300 s")?;
        if e.run_id != run_id {
            continue;
        }
        let key = e.routing_key();
        let done = key == "test.passed.production";
        anyhow::ensure!(
            !key.contains("failed") && !key.contains("rolled_back"),
            "the {label} run failed: {key}: {:?}",
            e.event
        );
        events.push(e);
        if done {
            break;
        }
    }
    let total_s = started.elapsed().as_secs_f64();
    let at = |key: &str| {
        events
            .iter()
            .find(|e| e.routing_key() == key)
            .map(|e| e.time)
    };
    let span = |from: &str, to: &str| match (at(from), at(to)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => f64::NAN,
    };
    let mut stages = BTreeMap::new();
    stages.insert("build".to_owned(), span("source.changed", "image.built"));
    stages.insert("push".to_owned(), span("image.built", "image.pushed"));
    stages.insert(
        "pull".to_owned(),
        span("image.pushed", "image.pulled.staging"),
    );
    stages.insert(
        "deploy_staging".to_owned(),
        span("image.pulled.staging", "deploy.succeeded.staging"),
    );
    stages.insert(
        "test_staging".to_owned(),
        span("deploy.succeeded.staging", "test.passed.staging"),
    );
    stages.insert(
        "deploy_production".to_owned(),
        span("test.passed.staging", "deploy.succeeded.production"),
    );
    stages.insert(
        "test_production".to_owned(),
        span("deploy.succeeded.production", "test.passed.production"),
    );
    // Inside Docker and the tests: as the stages report it themselves.
    let mut external_ms = 0u64;
    let mut pulled_ms = 0u64;
    for e in &events {
        match &e.event {
            Event::ImageBuilt(b) => external_ms += b.docker_millis.unwrap_or_default(),
            Event::ImagePushed(p) => external_ms += p.docker_millis.unwrap_or_default(),
            // Hosts pull in parallel: the slowest counts, once for the whole pull.
            Event::ImagePulled(p) => {
                pulled_ms =
                    pulled_ms.max(p.hosts.iter().map(|h| h.millis).max().unwrap_or_default());
            }
            Event::DeploySucceeded(d) => {
                external_ms += d.hosts.iter().map(|h| h.millis).sum::<u64>()
            }
            Event::TestPassed(t) => external_ms += t.millis,
            _ => {}
        }
    }
    external_ms += pulled_ms;
    Ok(Timed {
        run: Run {
            total_s,
            stages,
            external_s: external_ms as f64 / 1000.0,
        },
        events: events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.to_json()).into_owned())
            .collect(),
    })
}

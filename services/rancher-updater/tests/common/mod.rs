//! What the updater's Docker tests share: a project's configuration on the harness's
//! first Docker host, the updater, deploy requests and what serves on a port.
#![allow(dead_code)]

use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event};
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_testkit::{amqp_url, docker, docker_hosts, http_request};
use std::path::Path;
use std::sync::Arc;

/// A web image for this test's namespace (see `ferry_testkit::web_image`).
pub fn web_image(ns: &str, version: &str, healthy: bool) -> String {
    ferry_testkit::web_image(&docker_hosts()[0], &format!("web-{ns}"), version, healthy).unwrap()
}

pub fn config(ns: &str, project: &str, ports: [u16; 2]) -> Arc<FerryConfig> {
    config_with(ns, project, ports, "", "")
}

/// `start_delay`: a shell pause before httpd starts, to make deploys take a while.
/// `container_extra`: more `[projects.<p>.container]` keys.
pub fn config_with(
    ns: &str,
    project: &str,
    ports: [u16; 2],
    start_delay: &str,
    container_extra: &str,
) -> Arc<FerryConfig> {
    let command = if start_delay.is_empty() {
        r#"["/bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"]"#.to_owned()
    } else {
        format!(
            r#"["/bin/sh", "-c", "sleep {start_delay}; exec /bin/httpd -f -p 127.0.0.1:{{port}} -h /www"]"#
        )
    };
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [services.rancher_updater]
        admin_listen = "127.0.0.1:0"
        [docker_hosts.h1]
        url = "{h1}"
        [environments.staging]
        target = "docker"
        hosts = ["h1"]
        [projects.{project}]
        image = "ferry-test/web-{ns}"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        [projects.{project}.container]
        ports = [{p1}, {p2}]
        command = {command}
        health_timeout_secs = 6
        {container_extra}
        "#,
        amqp = amqp_url(),
        h1 = docker_hosts()[0],
        p1 = ports[0],
        p2 = ports[1],
    );
    let path = std::env::temp_dir().join(format!("ferry-{ns}.toml"));
    std::fs::write(&path, &text).unwrap();
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

/// `ferry status` as an operator runs it.
pub fn ferry_status(ns: &str, project: &str) -> serde_json::Value {
    let config = std::env::temp_dir().join(format!("ferry-{ns}.toml"));
    let out = ferry_testkit::ferry_cli(&[
        "--config",
        &config.to_string_lossy(),
        "status",
        project,
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The test's configuration file (written by `config`) with `from` replaced by `to`,
/// written back (for `ferry status`) and loaded.
pub fn edit_config(ns: &str, from: &str, to: &str) -> Arc<FerryConfig> {
    let path = std::env::temp_dir().join(format!("ferry-{ns}.toml"));
    let before = std::fs::read_to_string(&path).unwrap();
    let text = before.replace(from, to);
    assert_ne!(text, before, "`{from}` is not in the configuration");
    std::fs::write(&path, &text).unwrap();
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

pub async fn start_updater(cfg: &Arc<FerryConfig>) -> ferry_testkit::RunningStage {
    ferry_testkit::spawn_stage(
        cfg,
        rancher_updater::spec(),
        rancher_updater::DEFAULTS,
        rancher_updater::Stage::new(cfg.clone()),
    )
    .await
}

/// Places handed out in creation order: a request made later is a later commit.
pub static PLACE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A deploy of a pipeline run, whose commit comes after every earlier request's.
pub fn request(project: &str, image: &str, version: &str) -> Envelope {
    let place = PLACE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    at_place(
        project,
        image,
        version,
        Some(RunOrder::new(OrderScale::Git, place)),
    )
}

/// A deploy at this place (none: as an older Ferry's run has).
pub fn at_place(project: &str, image: &str, version: &str, order: Option<RunOrder>) -> Envelope {
    let mut e = Envelope::new_run(
        project,
        Event::DeployRequested(DeployRequested {
            revision: version.into(),
            image: image.into(),
            reason: "manual".into(),
            requested_by: None,
        }),
    );
    e.environment = Some("staging".into());
    e.order = order;
    e
}

pub async fn serving(port: u16) -> Option<String> {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    match http_request(addr, "GET", "/", &[], b"").await {
        Ok((200, body)) => Some(body.trim().to_owned()),
        _ => None,
    }
}

pub fn cleanup(project: &str) {
    let host = &docker_hosts()[0];
    if let Ok(ids) = docker(
        host,
        None,
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.ferry.project={project}"),
        ],
    ) {
        for id in ids.lines() {
            let _ = docker(host, None, &["rm", "-f", id]);
        }
    }
}

/// The revisions running on the first host, sorted.
pub fn running_revisions(project: &str) -> Vec<String> {
    let out = docker(
        &docker_hosts()[0],
        None,
        &[
            "ps",
            "--filter",
            &format!("label=io.ferry.project={project}"),
            "--format",
            "{{.Label \"io.ferry.revision\"}}",
        ],
    )
    .unwrap();
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// An operator's rollback of staging to what ran before.
pub fn rollback(project: &str, by: &str) -> Envelope {
    let mut e = Envelope::new_run(
        project,
        Event::DeployRequested(DeployRequested {
            revision: String::new(),
            image: String::new(),
            reason: "rollback".into(),
            requested_by: Some(by.into()),
        }),
    );
    e.environment = Some("staging".into());
    e
}

/// Records the creates of `project`'s containers on the first host from now on (see
/// [`ferry_testkit::EventLog`] for why it streams).
pub fn watch_creations(project: &str) -> ferry_testkit::EventLog {
    ferry_testkit::EventLog::start(
        &docker_hosts()[0],
        &[
            "type=container".into(),
            "event=create".into(),
            format!("label=io.ferry.project={project}"),
        ],
    )
    .unwrap()
}

/// When each container `log` saw created was, and its name, in time order.
pub fn creations(log: &ferry_testkit::EventLog) -> Vec<(chrono::DateTime<chrono::Utc>, String)> {
    let mut created: Vec<_> = log
        .lines()
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((
                chrono::DateTime::from_timestamp_nanos(v["timeNano"].as_i64()?),
                v["Actor"]["Attributes"]["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    created.sort();
    created
}

/// The ids of the project's running containers on the first host.
pub fn running_ids(project: &str) -> Vec<String> {
    let out = docker(
        &docker_hosts()[0],
        None,
        &[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=io.ferry.project={project}"),
        ],
    )
    .unwrap();
    out.lines().map(str::to_owned).collect()
}

/// A project running three replicas on the first host (six ports), each taking
/// `start_delay` seconds to come up: deploys long enough to be interrupted between two
/// replicas' switches. The configuration is written for later `edit_config`s.
pub fn three_slow_replicas(ns: &str, project: &str, start_delay: &str) {
    let ports: Vec<u16> = (0..6).map(|_| ferry_testkit::free_port()).collect();
    let _ = config_with(ns, project, [ports[0], ports[1]], start_delay, "");
    let all: Vec<String> = ports.iter().map(u16::to_string).collect();
    let _ = edit_config(
        ns,
        &format!("ports = [{}, {}]", ports[0], ports[1]),
        &format!("replicas = 3\n        ports = [{}]", all.join(", ")),
    );
}

//! A project's own Rancher service, against the Rancher simulator (real HTTP, real
//! containers on two Docker daemons): created with its stack by the first deploy from
//! `rancher/<env>.json` in the project's real git config repo, upgraded by the next,
//! scaled under the deploy lock, and shown by `ferry status`; a missing or wrong
//! launch file creates nothing.

mod common;

use common::{ferry_status, start_updater};
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event, ScaleRequested};
use ferry_testkit::project::git;
use ferry_testkit::rancher::{ACCESS_KEY, Misbehave, PROJECT, RancherSim, SECRET_KEY};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, unique_namespace};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// In the launch file's environment: it goes to Rancher and nowhere else.
const DB_PASSWORD: &str = "launch-secret-7Qx9";

/// The image on both daemons: the simulator's hosts start instances from what they have
/// (a real Rancher host would pull it).
fn web_image(ns: &str, version: &str) -> String {
    image_on_both(ns, version, true)
}

/// `healthy`: whether it answers `/healthz`.
fn image_on_both(ns: &str, version: &str, healthy: bool) -> String {
    let mut tag = String::new();
    for host in &docker_hosts()[..2] {
        tag = ferry_testkit::web_image(host, &format!("cweb-{ns}"), version, healthy).unwrap();
    }
    tag
}

/// The launch file of `web` in `prod`: two instances of an httpd with a health check.
fn launch_file() -> serde_json::Value {
    json!({
        "scale": 2,
        "launchConfig": {
            "command": ["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"],
            "environment": { "DB_PASSWORD": DB_PASSWORD },
            "labels": { "team": "web" },
            "healthCheck": { "port": 8080, "requestLine": "GET /healthz HTTP/1.0",
                             "interval": 500, "healthyThreshold": 1, "unhealthyThreshold": 3,
                             "responseTimeout": 1000, "initializingTimeout": 20000 }
        }
    })
}

/// A real git config repo with `web/rancher/prod.json` (when given) and a file of
/// `shop`, which has none.
fn config_repo(root: &Path, launch: Option<&str>) -> String {
    let dir = root.join("ops-config");
    std::fs::create_dir_all(dir.join("web/rancher")).unwrap();
    std::fs::create_dir_all(dir.join("shop")).unwrap();
    if let Some(text) = launch {
        std::fs::write(dir.join("web/rancher/prod.json"), text).unwrap();
    }
    std::fs::write(dir.join("web/app.env"), "A=1\n").unwrap();
    std::fs::write(dir.join("shop/app.env"), "A=1\n").unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "ops config"]);
    format!("file://{}", dir.display())
}

fn config(ns: &str, rancher_url: &str, repo: &str, work: &Path) -> Arc<FerryConfig> {
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [300]
        max_attempts = 4
        [build]
        work_dir = "{work}"
        [services.rancher_updater]
        admin_listen = "127.0.0.1:0"
        [environments.prod]
        target = "rancher"
        rancher = {{ url = "{rancher_url}", project_id = "{PROJECT}", stack = "{{project}}-{{env}}", service = "web", access_key = "{ACCESS_KEY}", secret_key = "{SECRET_KEY}", timeout_secs = 15 }}
        [projects.web]
        image = "ferry-test/cweb-{ns}"
        environments = ["prod"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        config_repo = {{ url = "{repo}", path = "web" }}
        [projects.shop]
        image = "ferry-test/cweb-{ns}"
        environments = ["prod"]
        source = {{ kind = "git", url = "https://example.com/shop.git" }}
        config_repo = {{ url = "{repo}", path = "shop" }}
        "#,
        amqp = amqp_url(),
        work = work.display(),
    );
    std::fs::write(std::env::temp_dir().join(format!("ferry-{ns}.toml")), &text).unwrap();
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

struct World {
    sim: RancherSim,
    tap: Tap,
    publisher: Publisher,
    ns: String,
    updater: ferry_testkit::RunningStage,
    _dir: tempfile::TempDir,
}

async fn world(launch: Option<&str>) -> World {
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let repo = config_repo(dir.path(), launch);
    let misbehave = Misbehave {
        transition_ms: 300,
        ..Default::default()
    };
    let sim = RancherSim::empty(&docker_hosts()[..2], misbehave).unwrap();
    let cfg = config(&ns, &sim.url, &repo, &dir.path().join("work"));
    let tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    World {
        sim,
        tap,
        publisher,
        ns,
        updater,
        _dir: dir,
    }
}

impl World {
    async fn deploy(&self, project: &str, image: &str, revision: &str) -> Envelope {
        let mut e = Envelope::new_run(
            project,
            Event::DeployRequested(DeployRequested {
                revision: revision.into(),
                image: image.into(),
                reason: "manual".into(),
                requested_by: None,
            }),
        );
        e.environment = Some("prod".into());
        self.publisher.publish(&e).await.unwrap();
        e
    }

    async fn scale(&self, project: &str, to: u32) -> Envelope {
        let mut e = Envelope::new_run(
            project,
            Event::ScaleRequested(ScaleRequested {
                to,
                requested_by: Some("ops".into()),
            }),
        );
        e.environment = Some("prod".into());
        self.publisher.publish(&e).await.unwrap();
        e
    }

    fn status(&self, project: &str) -> serde_json::Value {
        ferry_status(&self.ns, project)
    }

    /// The service's instances running on the Docker daemons, by their labels.
    fn running_containers(&self, service_id: &str) -> usize {
        docker_hosts()[..2]
            .iter()
            .map(|h| {
                let service = format!("label=io.rancher.sim.service={service_id}");
                let sim = format!("label=io.rancher.sim={}", self.sim.tag());
                let ps = docker(
                    h,
                    None,
                    &["ps", "-q", "--filter", &service, "--filter", &sim],
                )
                .unwrap();
                ps.lines().count()
            })
            .sum()
    }

    async fn end(self) {
        self.updater.stop().await;
        self.sim.cleanup();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_deploy_creates_the_service_the_next_upgrades_it_and_a_scale_resizes_it() {
    let launch = launch_file().to_string();
    let mut w = world(Some(&launch)).await;
    let (v1, v2) = (web_image(&w.ns, "v1"), web_image(&w.ns, "v2"));
    w.deploy("web", &v1, "1").await;
    w.tap.expect("deploy.succeeded.prod", WAIT).await.unwrap();
    assert_eq!(w.sim.stacks().len(), 1, "{:?}", w.sim.stacks());
    let s = w
        .sim
        .service_named("web-prod", "web")
        .expect("the service was created");
    assert_eq!(
        (s.state.as_str(), s.scale, s.health.as_str()),
        ("active", 2, "healthy")
    );
    assert_eq!(s.launch["imageUuid"], format!("docker:{v1}"));
    assert_eq!(s.launch["labels"]["team"], "web");
    assert_eq!(s.launch["labels"]["io.ferry.revision"], "1");
    assert_eq!(s.launch["environment"]["DB_PASSWORD"], DB_PASSWORD);
    assert_eq!(s.launch["healthCheck"]["port"], 8080);
    // Two real containers, one on each daemon (Rancher spreads them), both healthy.
    assert_eq!(w.running_containers(&s.id), 2);
    let hosts: std::collections::BTreeSet<&str> =
        s.instances.iter().map(|i| i.host.as_str()).collect();
    assert_eq!(hosts.len(), 2, "{:?}", s.instances);

    // The next deploy finds it by name and upgrades it: nothing more is created.
    w.deploy("web", &v2, "2").await;
    let ok = w.tap.expect("deploy.succeeded.prod", WAIT).await.unwrap();
    let Event::DeploySucceeded(d) = &ok.event else {
        panic!()
    };
    assert_eq!(d.previous_image.as_deref(), Some(v1.as_str()));
    let s = w.sim.service_named("web-prod", "web").unwrap();
    assert_eq!(
        (s.launch["imageUuid"].as_str(), s.scale),
        (Some(format!("docker:{v2}").as_str()), 2)
    );
    let posts: Vec<String> = w
        .sim
        .requests()
        .into_iter()
        .filter(|(m, p)| m == "POST" && !p.contains("action="))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        posts.len(),
        2,
        "one stack and one service created: {posts:?}"
    );

    let status = w.status("web");
    let row = &status[0];
    assert_eq!(row["host"], "rancher:web-prod/web", "{status}");
    assert_eq!(
        (row["state"].as_str(), row["revision"].as_str()),
        (Some("running"), Some("2"))
    );
    assert_eq!(
        (row["scale"].as_u64(), row["health"].as_str()),
        (Some(2), Some("healthy"))
    );
    let instances = row["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{status}");
    let mut on: Vec<&str> = instances
        .iter()
        .map(|i| i["host"].as_str().unwrap())
        .collect();
    on.sort();
    assert_eq!(on, ["sim-host-1", "sim-host-2"], "{status}");

    // Scaled under the deploy lock, and the new instances pass their health check.
    w.scale("web", 3).await;
    let done = w.tap.expect("scale.succeeded.prod", WAIT).await.unwrap();
    let Event::ScaleSucceeded(sc) = &done.event else {
        panic!()
    };
    assert_eq!(
        (sc.from, sc.to, sc.requested_by.as_deref()),
        (2, 3, Some("ops"))
    );
    let s = w.sim.service_named("web-prod", "web").unwrap();
    assert_eq!((s.scale, s.health.as_str()), (3, "healthy"));
    assert_eq!(w.running_containers(&s.id), 3);
    w.scale("web", 1).await;
    w.tap.expect("scale.succeeded.prod", WAIT).await.unwrap();
    assert_eq!(w.running_containers(&s.id), 1);
    assert_eq!(w.status("web")[0]["scale"], 1);

    // An upgrade whose new instances never pass the health check is rolled back before
    // it is finished: the release before keeps running.
    let broken = image_on_both(&w.ns, "v3", false);
    w.deploy("web", &broken, "3").await;
    let failed = w.tap.expect("deploy.failed.prod", WAIT).await.unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("health check") && f.reason.contains("rolled back"),
        "{}",
        f.reason
    );
    let s = w.sim.service_named("web-prod", "web").unwrap();
    assert_eq!(s.state, "active");
    assert_eq!(s.launch["imageUuid"], format!("docker:{v2}"));

    // The launch file's secret went to Rancher only: no event carried it.
    let all = w.tap.drain(Duration::from_millis(300)).await;
    for e in &all {
        assert!(
            !serde_json::to_string(e).unwrap().contains(DB_PASSWORD),
            "{e:?}"
        );
    }
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_good_launch_file_nothing_is_created_and_the_reason_says_what_to_fix() {
    // web's file names an image: refused before anything is created.
    let bad = json!({ "launchConfig": { "imageUuid": "docker:evil/miner:1" } }).to_string();
    let mut w = world(Some(&bad)).await;
    let v1 = web_image(&w.ns, "v1");
    w.deploy("web", &v1, "1").await;
    let failed = w.tap.expect("deploy.failed.prod", WAIT).await.unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("rancher/prod.json") && f.reason.contains("imageUuid"),
        "{}",
        f.reason
    );
    // shop has no launch file at all.
    w.deploy("shop", &v1, "1").await;
    let failed = w.tap.expect("deploy.failed.prod", WAIT).await.unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("no rancher/prod.json") && f.reason.contains("config repo"),
        "{}",
        f.reason
    );
    // A scale before the first deploy has nothing to scale.
    w.scale("shop", 2).await;
    let failed = w.tap.expect("deploy.failed.prod", WAIT).await.unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("does not exist in Rancher yet"),
        "{}",
        f.reason
    );
    assert!(w.sim.stacks().is_empty(), "{:?}", w.sim.stacks());
    let writes: Vec<_> = w
        .sim
        .requests()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    assert!(
        writes.is_empty(),
        "nothing may be created or changed: {writes:?}"
    );
    assert_eq!(
        w.status("shop")[0]["state"],
        "not created yet (the first deploy creates it)"
    );
    w.end().await;
}

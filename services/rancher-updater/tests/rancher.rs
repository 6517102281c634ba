//! The rancher target against the Rancher simulator (real HTTP, real containers).

mod common;

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event};
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_testkit::rancher::{ACCESS_KEY, Misbehave, PROJECT, RancherSim, SECRET_KEY, SERVICE};
use ferry_testkit::{Tap, amqp_url, docker_hosts, free_port, http_request, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A web image for this test's namespace (see `ferry_testkit::web_image`).
fn web_image(ns: &str, version: &str) -> String {
    ferry_testkit::web_image(&docker_hosts()[0], &format!("rweb-{ns}"), version, true).unwrap()
}

fn command(port: u16) -> Vec<String> {
    [
        "/bin/httpd",
        "-f",
        "-p",
        &format!("127.0.0.1:{port}"),
        "-h",
        "/www",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn config(ns: &str, rancher_url: &str, secret: &str) -> Arc<FerryConfig> {
    config_with(ns, rancher_url, secret, "")
}

/// `extra`: more keys of the `rancher` table, e.g. `ca_file = "..."`.
fn config_with(ns: &str, rancher_url: &str, secret: &str, extra: &str) -> Arc<FerryConfig> {
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [300]
        max_attempts = 6
        [services.rancher_updater]
        admin_listen = "127.0.0.1:0"
        [environments.prod]
        target = "rancher"
        rancher = {{ url = "{rancher_url}", project_id = "{PROJECT}", service_id = "{SERVICE}", access_key = "{ACCESS_KEY}", secret_key = "{secret}", timeout_secs = 3 {extra} }}
        [projects.web]
        image = "ferry-test/rweb-{ns}"
        environments = ["prod"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        "#,
        amqp = amqp_url(),
    );
    std::fs::write(std::env::temp_dir().join(format!("ferry-{ns}.toml")), &text).unwrap();
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

struct World {
    sim: RancherSim,
    tap: Tap,
    publisher: Publisher,
    port: u16,
    ns: String,
    updater: ferry_testkit::RunningStage,
    /// Keeps the private CA's files for as long as the updater reads them.
    _transport: Transport,
}

async fn world(secret: &str, misbehave: Misbehave) -> World {
    world_over(secret, misbehave, Transport::Http).await
}

enum Transport {
    Http,
    /// Rancher behind HTTPS with a private CA's certificate; `true`: Ferry is given
    /// that CA (`rancher.ca_file`).
    Https(ferry_testkit::tls::PrivateCa, bool),
}

async fn world_over(secret: &str, misbehave: Misbehave, transport: Transport) -> World {
    let ns = unique_namespace();
    let port = free_port();
    let v1 = web_image(&ns, "v1");
    let sim = RancherSim::start(&docker_hosts()[0], &v1, command(port), misbehave)
        .await
        .unwrap();
    let cfg = match &transport {
        Transport::Http => config(&ns, &sim.url, secret),
        Transport::Https(ca, trusted) => {
            let backend = sim.url.trim_start_matches("http://").parse().unwrap();
            let front = ferry_testkit::tls::tls_front(backend, ca).await.unwrap();
            let extra = match trusted {
                true => format!(", ca_file = \"{}\"", ca.ca_file().display()),
                false => String::new(),
            };
            config_with(&ns, &format!("https://{front}"), secret, &extra)
        }
    };
    let tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let updater = common::start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    World {
        sim,
        tap,
        publisher,
        port,
        ns,
        updater,
        _transport: transport,
    }
}

impl World {
    async fn deploy(&self, image: &str) {
        self.deploy_at(image, None).await;
    }

    /// A pipeline run's deploy, at this place among the project's runs.
    async fn deploy_at(&self, image: &str, order: Option<RunOrder>) -> uuid::Uuid {
        let mut e = Envelope::new_run(
            "web",
            Event::DeployRequested(DeployRequested {
                revision: "r".into(),
                image: image.into(),
                reason: "manual".into(),
                requested_by: None,
            }),
        );
        e.environment = Some("prod".into());
        e.order = order;
        self.publisher.publish(&e).await.unwrap();
        e.run_id.into()
    }

    async fn serving(&self) -> Option<String> {
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        match http_request(addr, "GET", "/", &[], b"").await {
            Ok((200, body)) => Some(body.trim().to_owned()),
            _ => None,
        }
    }

    async fn end(self) {
        self.updater.stop().await;
        self.sim.cleanup();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_and_finish_runs_the_new_image() {
    let mut w = world(
        SECRET_KEY,
        Misbehave {
            transition_ms: 300,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(w.serving().await.as_deref(), Some("v1"));
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    let ok = w
        .tap
        .expect("deploy.succeeded.prod", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeploySucceeded(d) = &ok.event else {
        panic!()
    };
    assert!(d.previous_image.as_deref().unwrap().ends_with(":v1"));
    assert_eq!(w.sim.state(), "active");
    assert_eq!(w.sim.image(), format!("docker:{v2}"));
    assert_eq!(w.serving().await.as_deref(), Some("v2"));
    let status = common::ferry_status(&w.ns, "web");
    assert_eq!(status[0]["state"], "running", "{status}");
    assert_eq!(status[0]["image"], v2.as_str(), "{status}");
    assert_eq!(status[0]["revision"], "r", "{status}");
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_left_upgraded_is_finished_before_the_new_upgrade() {
    let mut w = world(
        SECRET_KEY,
        Misbehave {
            transition_ms: 200,
            ..Default::default()
        },
    )
    .await;
    let (v2, v3) = (web_image(&w.ns, "v2"), web_image(&w.ns, "v3"));
    w.sim.leave_upgraded(&v2, command(w.port)).unwrap();
    assert_eq!(w.sim.state(), "upgraded");
    w.deploy(&v3).await;
    w.tap
        .expect("deploy.succeeded.prod", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(w.sim.image(), format!("docker:{v3}"));
    assert_eq!(w.serving().await.as_deref(), Some("v3"));
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_fail_the_deploy_clearly() {
    let mut w = world("not-the-secret-key", Misbehave::default()).await;
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    let failed = w
        .tap
        .expect("deploy.failed.prod", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(f.reason.contains("refused the API keys"), "{}", f.reason);
    assert!(!f.reason.contains("not-the-secret-key"));
    assert_eq!(w.serving().await.as_deref(), Some("v1"));
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_stuck_in_upgrading_times_out_and_is_rolled_back() {
    let mut w = world(
        SECRET_KEY,
        Misbehave {
            transition_ms: 100,
            stuck_upgrading: true,
            ..Default::default()
        },
    )
    .await;
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    let failed = w
        .tap
        .expect("deploy.failed.prod", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("rolled back to the previous image"),
        "{}",
        f.reason
    );
    assert_eq!(w.sim.state(), "active");
    assert!(w.sim.image().ends_with(":v1"), "{}", w.sim.image());
    assert_eq!(w.serving().await.as_deref(), Some("v1"));
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_busy_states_are_retried_until_the_upgrade_goes_through() {
    let mut w = world(
        SECRET_KEY,
        Misbehave {
            transition_ms: 200,
            fail_requests: 2,
            refuse_actions: 1,
            ..Default::default()
        },
    )
    .await;
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    w.tap
        .expect("deploy.succeeded.prod", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(w.serving().await.as_deref(), Some("v2"));
    w.end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_request_goes_back_to_the_image_recorded_in_the_launch_config() {
    let mut w = world(SECRET_KEY, Misbehave::default()).await;
    let (v2, v3) = (web_image(&w.ns, "v2"), web_image(&w.ns, "v3"));
    for image in [&v2, &v3] {
        w.deploy(image).await;
        w.tap
            .expect("deploy.succeeded.prod", Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(w.serving().await.as_deref(), Some("v3"));
    // "What ran before", as an operator's `ferry rollback` asks for it.
    let mut e = Envelope::new_run(
        "web",
        Event::DeployRequested(DeployRequested {
            revision: String::new(),
            image: String::new(),
            reason: "rollback".into(),
            requested_by: Some("alice".into()),
        }),
    );
    e.environment = Some("prod".into());
    w.publisher.publish(&e).await.unwrap();
    let back = w
        .tap
        .expect("deploy.rolled_back.prod", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployRolledBack(b) = &back.event else {
        panic!()
    };
    assert_eq!(b.image, v2);
    assert_eq!(b.from_image.as_deref(), Some(v3.as_str()));
    assert_eq!(b.reason, "rollback requested by alice");
    assert_eq!(w.serving().await.as_deref(), Some("v2"));
    assert_eq!(w.sim.state(), "active");
    w.end().await;
}

/// Rancher behind HTTPS whose certificate a private CA signed: with `rancher.ca_file`
/// the upgrade goes through over TLS; without it, the deploy fails at once and says
/// which setting is missing (a certificate does not heal by retrying).
#[tokio::test(flavor = "multi_thread")]
async fn a_rancher_behind_https_with_a_private_ca_is_upgraded_once_its_ca_is_given() {
    let ca = ferry_testkit::tls::private_ca().unwrap();
    let mut w = world_over(SECRET_KEY, Misbehave::default(), Transport::Https(ca, true)).await;
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    w.tap
        .expect("deploy.succeeded.prod", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(w.sim.image(), format!("docker:{v2}"));
    assert_eq!(w.serving().await.as_deref(), Some("v2"));
    w.end().await;

    let ca = ferry_testkit::tls::private_ca().unwrap();
    let mut w = world_over(
        SECRET_KEY,
        Misbehave::default(),
        Transport::Https(ca, false),
    )
    .await;
    let v2 = web_image(&w.ns, "v2");
    w.deploy(&v2).await;
    let failed = w
        .tap
        .expect("deploy.failed.prod", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(f.reason.contains("certificate"), "{}", f.reason);
    assert!(f.reason.contains("rancher.ca_file"), "{}", f.reason);
    assert_eq!(w.serving().await.as_deref(), Some("v1"));
    w.end().await;
}

/// The launchConfig records the newest place deployed (`io.ferry.order`); a run at an
/// older place, requested later, is not upgraded to.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_at_an_older_place_than_the_service_records_is_superseded() {
    let mut w = world(SECRET_KEY, Misbehave::default()).await;
    let (v2, v3) = (web_image(&w.ns, "v2"), web_image(&w.ns, "v3"));
    let git = |n| Some(RunOrder::new(OrderScale::Git, n));
    let run = w.deploy_at(&v2, git(5)).await;
    w.tap
        .expect_run("deploy.succeeded.prod", run, Duration::from_secs(30))
        .await
        .unwrap();
    let run = w.deploy_at(&v3, git(3)).await;
    w.tap
        .expect_run("deploy.superseded.prod", run, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(w.sim.image(), format!("docker:{v2}"));
    assert_eq!(w.serving().await.as_deref(), Some("v2"));
    w.end().await;
}

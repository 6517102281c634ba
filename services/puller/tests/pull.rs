//! Pre-pulls onto three real Docker daemons ("hosts") from the registry with auth.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePushed};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, harness_var, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Build a small image on the first host and push it; its `repo:tag@digest`.
fn pushed_image(ns: &str) -> String {
    let tag = format!("{}/pull/{ns}:1", harness_var("FERRY_TEST_REGISTRY"));
    let dockerfile =
        format!("FROM ferry-test/busybox:1\nRUN [\"/bin/sh\", \"-c\", \"echo {ns} > /id\"]\n");
    let by_digest = ferry_testkit::build_and_push(&docker_hosts()[0], &dockerfile, &tag).unwrap();
    let digest = by_digest.split_once('@').unwrap().1;
    format!("{tag}@{digest}")
}

fn config(ns: &str, extra_hosts: &str, envs: &str) -> Arc<FerryConfig> {
    let hosts = docker_hosts();
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [300]
        max_attempts = 2
        [services.puller]
        admin_listen = "127.0.0.1:0"
        [pull]
        attempts_per_host = 1
        timeout_secs = 60
        [registry]
        address = "{registry}"
        username = "{user}"
        password = "{pass}"
        [docker_hosts.h1]
        url = "{h1}"
        [docker_hosts.h2]
        url = "{h2}"
        [docker_hosts.h3]
        url = "{h3}"
        {extra_hosts}
        {envs}
        [projects.shop]
        image = "pull/{ns}"
        environments = ["staging", "production"]
        source = {{ kind = "git", url = "https://example.com/shop.git" }}
        "#,
        amqp = amqp_url(),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        user = harness_var("FERRY_TEST_REGISTRY_USER"),
        pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        h1 = hosts[0],
        h2 = hosts[1],
        h3 = hosts[2],
    );
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

async fn run_puller(cfg: &Arc<FerryConfig>, image: &str) -> ferry_testkit::RunningStage {
    let stage = ferry_testkit::spawn_stage(
        cfg,
        puller::spec(),
        puller::DEFAULTS,
        puller::Stage::new(cfg.clone()),
    )
    .await;
    let event = Envelope::new_run(
        "shop",
        Event::ImagePushed(ImagePushed {
            docker_millis: None,
            revision: "1".into(),
            image: image.into(),
        }),
    );
    Publisher::new(&cfg.broker, "test", None)
        .publish(&event)
        .await
        .unwrap();
    stage
}

#[tokio::test]
async fn an_image_is_pulled_onto_every_host_of_each_environment_by_digest() {
    let ns = unique_namespace();
    let image = pushed_image(&ns);
    let cfg = config(
        &ns,
        "",
        "[environments.staging]\nhosts = [\"h1\", \"h2\", \"h3\"]\n[environments.production]\nhosts = [\"h2\"]\n",
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = run_puller(&cfg, &image).await;

    let staging = tap
        .expect("image.pulled.staging", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::ImagePulled(p) = &staging.event else {
        panic!()
    };
    let mut outcomes: Vec<(String, String)> = p
        .hosts
        .iter()
        .map(|h| (h.host.clone(), h.outcome.clone()))
        .collect();
    outcomes.sort();
    // h1 built and pushed it, so it already had it; the others pulled it.
    assert_eq!(
        outcomes,
        vec![
            ("h1".into(), "present".into()),
            ("h2".into(), "pulled".into()),
            ("h3".into(), "pulled".into())
        ]
    );
    tap.expect("image.pulled.production", Duration::from_secs(30))
        .await
        .unwrap();
    let by_digest = puller::by_digest(&image).unwrap();
    for host in docker_hosts() {
        docker(&host, None, &["image", "inspect", &by_digest])
            .unwrap_or_else(|e| panic!("{host} lacks the image: {e}"));
    }
    stage.stop().await;
}

#[tokio::test]
async fn a_host_that_is_down_keeps_its_environment_from_being_ready_and_is_named() {
    let ns = unique_namespace();
    let image = pushed_image(&ns);
    let cfg = config(
        &ns,
        "[docker_hosts.dead]\nurl = \"unix:///tmp/ferry-no-such-docker.sock\"\n",
        "[environments.staging]\nhosts = [\"h1\"]\n[environments.production]\nhosts = [\"h2\", \"dead\"]\n",
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = run_puller(&cfg, &image).await;

    tap.expect("image.pulled.staging", Duration::from_secs(60))
        .await
        .unwrap();
    let failed = tap
        .expect("pull.failed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::PullFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason
            .contains("production: dead (unix:///tmp/ferry-no-such-docker.sock)"),
        "{}",
        f.reason
    );
    let rest = tap.drain(Duration::from_millis(500)).await;
    assert!(
        rest.iter()
            .all(|e| e.routing_key() != "image.pulled.production"),
        "production was declared ready"
    );
    stage.stop().await;
}

/// A host that accepts connections and never answers (a hung engine) holds only its own
/// environment: staging, pulled at the same time, is published at once.
#[tokio::test]
async fn an_environment_is_published_when_ready_without_waiting_for_a_hung_one() {
    let ns = unique_namespace();
    let image = pushed_image(&ns);
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_addr = hung.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = hung.accept().await {
            open.push(conn);
        }
    });
    let cfg = config(
        &ns,
        &format!("[docker_hosts.hung]\nurl = \"tcp://{hung_addr}\"\n"),
        "[environments.staging]\nhosts = [\"h2\"]\n[environments.production]\nhosts = [\"hung\"]\n",
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let started = std::time::Instant::now();
    let stage = run_puller(&cfg, &image).await;
    // Production's pull hangs for its whole 60 s deadline; staging must not wait for it.
    tap.expect("image.pulled.staging", Duration::from_secs(20))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !tap.saw("image.pulled.production", |_| true),
        "the hung host's environment was declared ready"
    );
    held.abort();
    stage.stop().await;
}

/// Hosts from Rancher's hosts API: the active one is pulled onto (here: the first
/// daemon, reached over TCP with TLS as `host_url` says), the disconnected one is not.
#[tokio::test(flavor = "multi_thread")]
async fn rancher_environments_pre_pull_on_the_hosts_rancher_lists() {
    use ferry_testkit::rancher::{ACCESS_KEY, Misbehave, PROJECT, RancherSim, SECRET_KEY, SERVICE};
    let ns = unique_namespace();
    let image = pushed_image(&ns);
    let h1 = &docker_hosts()[0];
    // A real pull: the build host's copy goes.
    let _ = docker(h1, None, &["rmi", "-f", image.split('@').next().unwrap()]);
    let _ = docker(
        h1,
        None,
        &["rmi", "-f", &puller::by_digest(&image).unwrap()],
    );
    ferry_testkit::ensure_busybox_base(&docker_hosts()[2]).unwrap();
    let sim = RancherSim::start(
        &docker_hosts()[2],
        "ferry-test/busybox:1",
        vec!["/bin/sleep".into(), "3600".into()],
        Misbehave::default(),
    )
    .await
    .unwrap();
    let tls_port = harness_var("FERRY_TEST_DOCKER_TLS_URL")
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let envs = format!(
        r#"
        [environments.staging]
        [environments.production]
        target = "rancher"
        rancher = {{ url = "{url}", project_id = "{PROJECT}", service_id = "{SERVICE}", access_key = "{ACCESS_KEY}", secret_key = "{SECRET_KEY}", discover_hosts = true, host_url = "tcp://{{address}}:{tls_port}", host_tls_dir = "{dir}" }}
        "#,
        url = sim.url,
        dir = harness_var("FERRY_TEST_DOCKER_TLS_DIR"),
    );
    let cfg = config(&ns, "", &envs);
    let mut tap = Tap::new(&amqp_url(), &ns, "image.pulled.#").await.unwrap();
    let stage = run_puller(&cfg, &image).await;
    let pulled = tap
        .expect("image.pulled.production", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::ImagePulled(p) = &pulled.event else {
        panic!()
    };
    let hosts: Vec<(&str, &str)> = p
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.outcome.as_str()))
        .collect();
    assert_eq!(hosts, [("rancher:sim-host-1", "pulled")]);
    docker(
        h1,
        None,
        &["image", "inspect", &puller::by_digest(&image).unwrap()],
    )
    .unwrap();
    stage.stop().await;
    sim.cleanup();
}

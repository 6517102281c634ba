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
        .map(|h| (h.host.clone(), h.outcome.to_string()))
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
    let hosts: Vec<(&str, String)> = p
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.outcome.to_string()))
        .collect();
    assert_eq!(hosts, [("rancher:sim-host-1", "pulled".to_owned())]);
    docker(
        h1,
        None,
        &["image", "inspect", &puller::by_digest(&image).unwrap()],
    )
    .unwrap();
    stage.stop().await;
    sim.cleanup();
}

/// A registry on another loopback port standing in for an attacker's: it asks for Basic
/// credentials (as registry v2 with htpasswd does) and records every `Authorization` it
/// receives.
struct ForeignRegistry {
    address: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ForeignRegistry {
    async fn start() -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, n) = (seen.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, n) = (s.clone(), n.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => head.extend_from_slice(&buf[..k]),
                        }
                    }
                    n.fetch_add(1, Ordering::SeqCst);
                    for line in String::from_utf8_lossy(&head).lines() {
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("authorization")
                        {
                            s.lock().unwrap().push(value.trim().to_owned());
                        }
                    }
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\n\
                              Docker-Distribution-Api-Version: registry/2.0\r\n\
                              WWW-Authenticate: Basic realm=\"attacker\"\r\n\
                              Content-Type: application/json\r\n\
                              Content-Length: 2\r\nConnection: close\r\n\r\n{}",
                        )
                        .await;
                });
            }
        });
        Self {
            address,
            seen,
            requests,
            task,
        }
    }
}

/// An `image.pushed` naming another registry (a forged event from a broker user that
/// can publish it, or a Harbor hook before the receiver checked the host) is refused
/// before any engine is asked: `pull.failed` says why, the foreign registry is never
/// contacted (so Ferry's credentials cannot go there) and no host gets the image.
#[tokio::test]
async fn an_image_on_another_registry_is_refused_and_never_fetched() {
    let ns = unique_namespace();
    let foreign = ForeignRegistry::start().await;
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let image = format!("{}/pull/{ns}:1@{digest}", foreign.address);
    let cfg = config(
        &ns,
        "",
        "[environments.staging]\nhosts = [\"h2\"]\n[environments.production]\nhosts = [\"h3\"]\n",
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = run_puller(&cfg, &image).await;

    let failed = tap
        .expect("pull.failed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::PullFailed(f) = &failed.event else {
        panic!()
    };
    stage.stop().await;
    foreign.task.abort();
    assert!(
        f.reason.contains(&foreign.address) && f.reason.contains("registry.address"),
        "{}",
        f.reason
    );
    assert!(!tap.saw("image.pulled.staging", |_| true));
    assert!(!tap.saw("image.pulled.production", |_| true));
    assert_eq!(
        foreign.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an engine was sent to the foreign registry"
    );
    assert!(foreign.seen.lock().unwrap().is_empty());
    let password = harness_var("FERRY_TEST_REGISTRY_PASSWORD");
    assert!(!f.reason.contains(&password), "{}", f.reason);
}

/// Another project's image on Ferry's own registry, named in a forged `image.pushed`
/// for `shop` (`image = "pull/<ns>"`): refused with the reason, and the hosts of
/// shop's environments never get it.
#[tokio::test]
async fn another_projects_image_on_our_registry_is_refused_and_not_pulled() {
    let ns = unique_namespace();
    let tag = format!("{}/pull/{ns}-other:1", harness_var("FERRY_TEST_REGISTRY"));
    let dockerfile = format!(
        "FROM ferry-test/busybox:1\nRUN [\"/bin/sh\", \"-c\", \"echo other-{ns} > /id\"]\n"
    );
    let by_digest = ferry_testkit::build_and_push(&docker_hosts()[0], &dockerfile, &tag).unwrap();
    let digest = by_digest.split_once('@').unwrap().1;
    let image = format!("{tag}@{digest}");
    let hosts = docker_hosts();
    for host in [&hosts[1], &hosts[2]] {
        let _ = docker(host, None, &["rmi", "-f", &by_digest]);
    }
    let cfg = config(
        &ns,
        "",
        "[environments.staging]\nhosts = [\"h2\"]\n[environments.production]\nhosts = [\"h3\"]\n",
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = run_puller(&cfg, &image).await;
    let failed = tap
        .expect("pull.failed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::PullFailed(f) = &failed.event else {
        panic!()
    };
    stage.stop().await;
    assert!(
        f.reason.contains(&format!("pull/{ns}-other")) && f.reason.contains("not project `shop`"),
        "{}",
        f.reason
    );
    assert!(!tap.saw("image.pulled.staging", |_| true));
    assert!(!tap.saw("image.pulled.production", |_| true));
    for host in [&hosts[1], &hosts[2]] {
        assert!(
            docker(host, None, &["image", "inspect", &by_digest]).is_err(),
            "{host} pulled another project's image"
        );
    }
}

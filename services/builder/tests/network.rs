//! A build's `RUN` steps run a commit's code (a composer or npm install script): they
//! must not reach the build host's own services (the broker, a loopback registry, the
//! Docker API), while dependencies can still be fetched from elsewhere.
//!
//! Each build below runs a Dockerfile that tries to connect to the broker's port and to
//! a listener this test opens on the build host, writing what it reached into `/probe`
//! in the image; the test reads the file back and counts the connections it received.

mod common;

use common::*;
use ferry_shared::config::{ContainerNetwork, FerryConfig};
use ferry_shared::event::Event;
use ferry_testkit::{docker, docker_hosts, ensure_busybox_base, free_port, harness_var};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Listeners on `addresses` (one port for all), counting the connections they accept.
struct HostService {
    port: u16,
    accepted: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl HostService {
    async fn start(addresses: &[String]) -> Self {
        let port = free_port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for a in addresses {
            let listener = tokio::net::TcpListener::bind((a.as_str(), port))
                .await
                .unwrap_or_else(|e| panic!("binding {a}:{port}: {e}"));
            let n = accepted.clone();
            tasks.push(tokio::spawn(async move {
                while listener.accept().await.is_ok() {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        Self {
            port,
            accepted,
            tasks,
        }
    }
}

impl Drop for HostService {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// A "dependency mirror": busybox httpd in the harness's mirror namespace, which stands
/// for a machine other than the build host.
struct Mirror {
    url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Mirror {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dep.txt"), "dependency-1.2.3\n").unwrap();
        let addr = harness_var("FERRY_TEST_BUILD_MIRROR_ADDR");
        let port = free_port();
        let child = std::process::Command::new("nsenter")
            .arg(format!(
                "--net={}",
                harness_var("FERRY_TEST_BUILD_MIRROR_NETNS")
            ))
            .args(["/bin/busybox", "httpd", "-f", "-p"])
            .arg(format!("{addr}:{port}"))
            .arg("-h")
            .arg(dir.path())
            .spawn()
            .expect("starting the mirror (nsenter, busybox httpd)");
        Self {
            url: format!("{addr} {port}"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Dockerfile probing `targets` (`host:port`) and, if given, fetching `dep.txt` from
/// the mirror (`"<addr> <port>"`). busybox's wget needs NSS even for an address, so
/// the fetch is plain HTTP over nc.
fn probe_dockerfile(targets: &[String], mirror: Option<&str>) -> String {
    let fetch = match mirror {
        Some(m) => {
            format!("(printf 'GET /dep.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {m} > /dep || true)")
        }
        None => "true".into(),
    };
    format!(
        "FROM {base}\nRUN for t in {targets}; do if nc -w 3 ${{t%:*}} ${{t#*:}} </dev/null; then echo \"$t reached\"; else echo \"$t unreachable\"; fi; done > /probe; touch /dep; {fetch}\n",
        base = ferry_testkit::BUSYBOX_BASE,
        targets = targets.join(" "),
    )
}

/// Build `dockerfile` with the builder on `host` with `network`; `/probe` and `/dep`
/// of the image.
async fn build_probe(host: &str, network: ContainerNetwork, dockerfile: &str) -> (String, String) {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let s = setup_with(
        &svn_source(&url),
        &harness_var("FERRY_TEST_REGISTRY"),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        dockerfile,
        "",
    );
    let mut cfg: FerryConfig = (*s.cfg).clone();
    cfg.build.docker_host = host.to_owned();
    cfg.build.network = network;
    let cfg = Arc::new(cfg);
    ensure_busybox_base(host).unwrap();
    let mut tap = ferry_testkit::Tap::new(&ferry_testkit::amqp_url(), &cfg.broker.namespace, "#")
        .await
        .unwrap();
    let stage = ferry_testkit::spawn_stage(
        &cfg,
        builder::spec(),
        builder::DEFAULTS,
        builder::Stage::new(cfg.clone()),
    )
    .await;
    trigger(&cfg, "1").await;
    let built = loop {
        let e = tap
            .next(Duration::from_secs(180))
            .await
            .expect("neither image.built nor build.failed");
        if ["image.built", "build.failed"].contains(&e.routing_key().as_str()) {
            break e;
        }
    };
    stage.stop().await;
    let Event::ImageBuilt(b) = &built.event else {
        panic!("the build failed: {:?}", built.event)
    };
    let read = |file: &str| {
        docker(
            host,
            None,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                &b.image,
                "/bin/cat",
                file,
            ],
        )
        .unwrap()
    };
    let out = (read("/probe"), read("/dep"));
    let _ = docker(host, None, &["rmi", "-f", &b.image]);
    out
}

fn assert_unreachable(probe: &str, targets: &[String]) {
    for t in targets {
        assert!(
            probe.contains(&format!("{t} unreachable")),
            "a RUN step reached {t}:\n{probe}"
        );
    }
}

/// On a Docker host like the test hosts (no bridge network, the host's own network
/// namespace), the default `build.network` keeps RUN steps off the host's loopback:
/// neither the broker nor a service on 127.0.0.1 is reached.
#[tokio::test]
async fn run_steps_cannot_reach_the_broker_or_the_hosts_loopback() {
    let service = HostService::start(&["127.0.0.1".to_owned()]).await;
    let targets = vec![
        format!("127.0.0.1:{}", harness_var("FERRY_TEST_AMQP_PORT")),
        format!("127.0.0.1:{}", service.port),
    ];
    let dockerfile = probe_dockerfile(&targets, None);
    let (probe, _) =
        build_probe(&docker_hosts()[0], ContainerNetwork::default(), &dockerfile).await;
    assert_unreachable(&probe, &targets);
    assert_eq!(service.accepted.load(Ordering::SeqCst), 0, "{probe}");
}

/// The build host a production build host should be (tests/lib/components.sh,
/// `dockerd-build`): the daemon in its own network namespace behind NAT. RUN steps reach
/// neither the broker, nor the host's loopback, nor the host through the namespace's
/// gateway, even with `build.network = "host"`, while a dependency mirror on another
/// machine answers.
#[tokio::test]
async fn a_build_host_in_its_own_namespace_fetches_dependencies_but_never_reaches_the_host() {
    let host = ferry_testkit::build_docker_host();
    let gateway = harness_var("FERRY_TEST_BUILD_GATEWAY");
    let service = HostService::start(&["127.0.0.1".to_owned(), gateway.clone()]).await;
    let mirror = Mirror::start();
    let targets = vec![
        format!("127.0.0.1:{}", harness_var("FERRY_TEST_AMQP_PORT")),
        format!("127.0.0.1:{}", service.port),
        format!("{gateway}:{}", service.port),
        format!("{gateway}:{}", harness_var("FERRY_TEST_AMQP_PORT")),
    ];
    let dockerfile = probe_dockerfile(&targets, Some(&mirror.url));
    for network in [ContainerNetwork::default(), ContainerNetwork::Host] {
        let (probe, dep) = build_probe(&host, network.clone(), &dockerfile).await;
        assert_unreachable(&probe, &targets);
        assert!(
            dep.contains("dependency-1.2.3"),
            "network {network}: the mirror was not reached: {dep:?}\n{probe}"
        );
    }
    assert_eq!(service.accepted.load(Ordering::SeqCst), 0);
}

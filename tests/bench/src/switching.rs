//! `deploy_failed_requests` and `deploy_requests`: requests sent without pause to an
//! environment's stable port, through the host's HAProxy, during 20 consecutive deploys
//! and rollbacks (10 of each), some of them 2-second requests in flight at each switch;
//! how many were sent, and how many failed or were cut (target 0).

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event};
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_testkit::load::Load;
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, free_port, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

pub struct Figures {
    pub sent: u64,
    pub failed: u64,
}

pub async fn switching() -> anyhow::Result<Figures> {
    let host = docker_hosts()[0].clone();
    let proxy_image = ferry_testkit::ensure_proxy_image(&host)?;
    let ns = unique_namespace();
    let project = format!("sw{}", &ns[1..9]);
    let (a, b, stable) = (free_port(), free_port(), free_port());
    let container = format!("ferry-proxy-{ns}");
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [proxy]
        image = "{proxy_image}"
        container = "{container}"
        bind_address = "127.0.0.1"
        [services.rancher_updater]
        admin_listen = "127.0.0.1:0"
        [docker_hosts.h1]
        url = "{host}"
        [environments.staging]
        hosts = ["h1"]
        [projects.{project}]
        image = "ferry-test/sw-{ns}"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://example.com/web.git" }}
        [projects.{project}.container]
        ports = [{a}, {b}]
        command = ["/bin/httpd", "-f", "-p", "127.0.0.1:{{port}}", "-h", "/www"]
        proxy_ports = {{ staging = {stable} }}
        "#,
        amqp = amqp_url(),
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?);
    let images = [
        ferry_testkit::slow_web_image(&host, &format!("sw-{ns}"), "v1")?,
        ferry_testkit::slow_web_image(&host, &format!("sw-{ns}"), "v2")?,
    ];
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await?;
    let updater = ferry_testkit::spawn_stage(
        &cfg,
        rancher_updater::spec(),
        rancher_updater::DEFAULTS,
        rancher_updater::Stage::new(cfg.clone()),
    )
    .await;
    let publisher = Publisher::new(&cfg.broker, "bench", None);
    let mut place = 0;
    let mut deploy = |image: &str, reason: &str| {
        place += 1;
        let mut e = Envelope::new_run(
            project.clone(),
            Event::DeployRequested(DeployRequested {
                revision: image.rsplit(':').next().unwrap_or_default().to_owned(),
                image: if reason == "rollback" {
                    String::new()
                } else {
                    image.to_owned()
                },
                reason: reason.into(),
                requested_by: None,
            }),
        );
        e.environment = Some("staging".into());
        e.order = Some(RunOrder::new(OrderScale::Git, place));
        e
    };
    publisher.publish(&deploy(&images[0], "manual")).await?;
    tap.expect("deploy.succeeded.staging", WAIT).await?;
    let addr = format!("127.0.0.1:{stable}").parse()?;
    let fast = Load::start(addr, "/", 4, Duration::from_secs(600));
    let slow = Load::start(addr, "/cgi-bin/slow", 2, Duration::from_secs(600));
    for _ in 0..10 {
        publisher.publish(&deploy(&images[1], "manual")).await?;
        tap.expect("deploy.succeeded.staging", WAIT).await?;
        publisher.publish(&deploy("", "rollback")).await?;
        tap.expect("deploy.rolled_back.staging", WAIT).await?;
    }
    let (fast, slow) = (fast.stop().await, slow.stop().await);
    for r in [&fast, &slow] {
        if r.failed > 0 {
            eprintln!("bench: failed requests: {:?}", r.samples);
        }
    }
    updater.stop().await;
    let ids = docker(
        &host,
        None,
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.ferry.project={project}"),
        ],
    )
    .unwrap_or_default();
    for id in ids.lines().chain([container.as_str()]) {
        let _ = docker(&host, None, &["rm", "-f", id]);
    }
    Ok(Figures {
        sent: fast.sent + slow.sent,
        failed: fast.failed + slow.failed,
    })
}

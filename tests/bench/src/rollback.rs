//! `rollback_s`: from `ferry rollback` to the previous revision serving on every host of
//! a four-host docker-target environment. The hosts are the linked hosts (each Docker
//! daemon in its own network namespace, reached at its own address), so the rolling
//! switch really visits four machines' worth of containers.

use anyhow::Context;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event};
use ferry_shared::shutdown;
use ferry_testkit::{docker, docker_hosts, free_port, harness_var, http_request, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-operator-token-0001";

pub struct Figures {
    pub rollback_s: f64,
    pub hosts: usize,
}

pub async fn rollback() -> anyhow::Result<Figures> {
    let linked: Vec<String> = harness_var("FERRY_BENCH_LINKED_HOSTS")
        .split(',')
        .map(str::to_owned)
        .collect();
    let addresses: Vec<String> = (1..=linked.len())
        .map(|i| format!("10.200.0.1{i}"))
        .collect();
    let registry = harness_var("FERRY_TEST_REGISTRY");
    let linked_registry = harness_var("FERRY_BENCH_LINKED_REGISTRY");
    let ns = unique_namespace();
    let project = format!("rb{}", &ns[1..9]);
    let repo = format!("bench/rollback-{ns}");
    let mut images = Vec::new();
    for v in ["v1", "v2"] {
        let dockerfile = format!(
            "FROM ferry-test/busybox:1\nRUN [\"/bin/sh\", \"-c\", \"mkdir /www && echo {v} > /www/index.html && echo ok > /www/healthz\"]\n"
        );
        let by_digest = ferry_testkit::build_and_push(
            &docker_hosts()[0],
            &dockerfile,
            &format!("{registry}/{repo}:{v}"),
        )?;
        let digest = by_digest.split_once('@').context("no digest")?.1.to_owned();
        images.push(format!("{linked_registry}/{repo}:{v}@{digest}"));
    }
    let ports = [free_port(), free_port()];
    let mut text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [registry]
        address = "{linked_registry}"
        username = "{user}"
        password = "{pass}"
        [operators.bench]
        token = "{TOKEN}"
        can = ["view", "deploy", "approve", "rollback"]
        [services.hook_receiver]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [services.rancher_updater]
        admin_listen = "127.0.0.1:0"
        [environments.production]
        hosts = [{host_names}]
        [projects.{project}]
        image = "{repo}"
        environments = ["production"]
        source = {{ kind = "git", url = "https://example.com/rb.git" }}
        [projects.{project}.container]
        ports = [{p1}, {p2}]
        command = ["/bin/httpd", "-f", "-p", "{{port}}", "-h", "/www"]
        health_timeout_secs = 20
        "#,
        amqp = ferry_testkit::amqp_url(),
        user = harness_var("FERRY_TEST_REGISTRY_USER"),
        pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        host_names = (1..=linked.len())
            .map(|i| format!("\"l{i}\""))
            .collect::<Vec<_>>()
            .join(", "),
        p1 = ports[0],
        p2 = ports[1],
    );
    for (i, (url, address)) in linked.iter().zip(&addresses).enumerate() {
        text.push_str(&format!(
            "[docker_hosts.l{}]\nurl = \"{url}\"\naddress = \"{address}\"\n",
            i + 1
        ));
    }
    let cfg = Arc::new(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?);

    let (trigger, stop) = shutdown::channel();
    let updater = ferry_testkit::spawn_stage(
        &cfg,
        rancher_updater::spec(),
        rancher_updater::DEFAULTS,
        rancher_updater::Stage::new(cfg.clone()),
    )
    .await;
    let receiver = hook_receiver::HookReceiver::bind(cfg.clone()).await?;
    let api = receiver.addr;
    let api_task = tokio::spawn(receiver.run_until_stopped(stop.wait_owned()));
    let publisher = Publisher::new(&cfg.broker, "bench", None);

    for (image, v) in images.iter().zip(["v1", "v2"]) {
        let mut e = Envelope::new_run(
            project.as_str(),
            Event::DeployRequested(DeployRequested {
                revision: v.into(),
                image: image.clone(),
                reason: "manual".into(),
                requested_by: None,
            }),
        );
        e.environment = Some("production".into());
        publisher.publish(&e).await?;
        serving_everywhere(&addresses, ports, v, Duration::from_secs(180)).await?;
    }

    let exe = std::env::current_exe()?;
    let ferry = exe.parent().context("binary dir")?.join("ferry");
    let started = Instant::now();
    let out = tokio::process::Command::new(&ferry)
        .args(["rollback", &project, "--env", "production"])
        .env("FERRY_SERVER", format!("http://{api}"))
        .env("FERRY_TOKEN", TOKEN)
        .output()
        .await
        .with_context(|| format!("running {} (bench.sh builds it)", ferry.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "ferry rollback failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serving_everywhere(&addresses, ports, "v1", Duration::from_secs(60)).await?;
    let rollback_s = started.elapsed().as_secs_f64();

    updater.stop().await;
    trigger.trigger();
    let _ = api_task.await;
    for host in &linked {
        let filter = format!("label=io.ferry.project={project}");
        if let Ok(ids) = docker(host, None, &["ps", "-aq", "--filter", &filter]) {
            for id in ids.lines() {
                let _ = docker(host, None, &["rm", "-f", id]);
            }
        }
    }
    Ok(Figures {
        rollback_s,
        hosts: linked.len(),
    })
}

/// Wait until every host answers `version` on one of the two ports, and none answers
/// anything else.
async fn serving_everywhere(
    addresses: &[String],
    ports: [u16; 2],
    version: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for a in addresses {
            let mut answers = Vec::new();
            for p in ports {
                let addr = format!("{a}:{p}").parse()?;
                if let Ok(Ok((200, body))) = tokio::time::timeout(
                    Duration::from_millis(500),
                    http_request(addr, "GET", "/", &[], b""),
                )
                .await
                {
                    answers.push(body.trim().to_owned());
                }
            }
            all &= !answers.is_empty() && answers.iter().all(|b| b == version);
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{version} not serving on every host within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

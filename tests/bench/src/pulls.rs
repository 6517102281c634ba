//! Pre-pull figures: one image (two random 30 MB layers) onto 4 Docker daemons.
//! On plain daemons sharing this machine (CPU and disk shared), the puller is compared
//! with the shell's own concurrent `docker pull` on the same daemons. On daemons that
//! each have their own 100 Mbit/s link (network namespaces), parallel and sequential
//! pulls are compared with a single pull: N hosts for the time of one.

use anyhow::Context as _;
use ferry_shared::config::FerryConfig;
use ferry_testkit::{docker, docker_hosts, harness_var, unique_namespace};
use std::path::Path;
use std::time::Instant;

pub struct Figures {
    pub puller_parallel4_s: f64,
    pub cli_parallel4_s: f64,
    pub linked_single_s: f64,
    pub linked_parallel4_s: f64,
    pub linked_sequential4_s: f64,
}

pub async fn pulls() -> anyhow::Result<Figures> {
    let hosts = docker_hosts();
    anyhow::ensure!(
        hosts.len() >= 5,
        "the pull figures need 5 Docker hosts (bench.sh starts them)"
    );
    let linked: Vec<String> = harness_var("FERRY_BENCH_LINKED_HOSTS")
        .split(',')
        .map(str::to_owned)
        .collect();
    let registry = harness_var("FERRY_TEST_REGISTRY");
    let linked_registry = harness_var("FERRY_BENCH_LINKED_REGISTRY");
    let login = tempfile::tempdir()?;
    let (user, pass) = (
        harness_var("FERRY_TEST_REGISTRY_USER"),
        harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );

    // The image: built on the first host, pushed once (both registries share storage).
    let repo = format!("bench/big-{}", unique_namespace());
    let dockerfile = "FROM ferry-test/busybox:1\nRUN [\"/bin/dd\", \"if=/dev/urandom\", \"of=/a\", \"bs=1M\", \"count=30\"]\nRUN [\"/bin/dd\", \"if=/dev/urandom\", \"of=/b\", \"bs=1M\", \"count=30\"]\n";
    let by_digest =
        ferry_testkit::build_and_push(&hosts[0], dockerfile, &format!("{registry}/{repo}:1"))?;
    let digest = by_digest
        .split_once('@')
        .map(|(_, d)| d.to_owned())
        .context("no digest")?;
    // The shell's pulls log in like an operator would (credentials in a client config dir).
    docker(
        &hosts[1],
        Some(login.path()),
        &["login", "-u", &user, "-p", &pass, &registry],
    )?;
    let local_ref = format!("{registry}/{repo}@{digest}");
    let linked_ref = format!("{linked_registry}/{repo}@{digest}");

    let plain: Vec<(String, String)> = hosts[1..5]
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("h{}", i + 2), h.clone()))
        .collect();
    let cfg = config(&registry, 8)?;
    let mut puller_s = Vec::new();
    let mut cli_s = Vec::new();
    for _ in 0..2 {
        clean(&plain, &local_ref);
        puller_s.push(timed_pull(&cfg, &local_ref, &plain).await?);
        clean(&plain, &local_ref);
        let t = Instant::now();
        let children: Vec<_> = plain
            .iter()
            .map(|(_, h)| {
                std::process::Command::new("docker")
                    .arg("--config")
                    .arg(login.path())
                    .args(["-H", h, "pull", "-q", &local_ref])
                    .output()
            })
            .collect();
        for c in children {
            anyhow::ensure!(c?.status.success(), "docker pull failed");
        }
        cli_s.push(t.elapsed().as_secs_f64());
    }
    clean(&plain, &local_ref);

    let linked_hosts: Vec<(String, String)> = linked
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("l{}", i + 1), h.clone()))
        .collect();
    let parallel = config(&linked_registry, 8)?;
    let sequential = config(&linked_registry, 1)?;
    clean(&linked_hosts, &linked_ref);
    let linked_single_s = timed_pull(&parallel, &linked_ref, &linked_hosts[..1]).await?;
    clean(&linked_hosts, &linked_ref);
    let linked_parallel4_s = timed_pull(&parallel, &linked_ref, &linked_hosts).await?;
    clean(&linked_hosts, &linked_ref);
    let linked_sequential4_s = timed_pull(&sequential, &linked_ref, &linked_hosts).await?;
    clean(&linked_hosts, &linked_ref);

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(Figures {
        puller_parallel4_s: mean(&puller_s),
        cli_parallel4_s: mean(&cli_s),
        linked_single_s,
        linked_parallel4_s,
        linked_sequential4_s,
    })
}

pub fn config(registry: &str, concurrency: usize) -> anyhow::Result<FerryConfig> {
    let text = format!(
        "[registry]\naddress = \"{registry}\"\nusername = \"{}\"\npassword = \"{}\"\n[pull]\nconcurrency = {concurrency}\nattempts_per_host = 1\n",
        harness_var("FERRY_TEST_REGISTRY_USER"),
        harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    Ok(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?)
}

pub async fn timed_pull(
    cfg: &FerryConfig,
    image: &str,
    hosts: &[(String, String)],
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let results = ferry_docker::pull::pull_all(cfg, image, hosts).await;
    let secs = t.elapsed().as_secs_f64();
    if let Some(e) = results.iter().find_map(|r| r.error.clone()) {
        anyhow::bail!("pull failed: {e}");
    }
    anyhow::ensure!(
        results.iter().all(|r| r.timing.outcome == "pulled"),
        "a host already had the image"
    );
    Ok(secs)
}

/// Remove the image (and its layers) from the hosts, so the next pull starts cold.
pub fn clean(hosts: &[(String, String)], image: &str) {
    for (_, h) in hosts {
        let _ = docker(h, None, &["rmi", "-f", image]);
    }
}

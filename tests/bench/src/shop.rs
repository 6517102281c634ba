//! The PHP application our users ship (`deploy/examples/shop`): its image built the way
//! Ferry's builder builds it (the SVN code with the config repo's files laid over it, the
//! classic builder), cold (bases present, no layer cache) and warm (one PHP file changed),
//! its size, and its pre-pull onto the 4 linked hosts (own 100 Mbit/s link each) in
//! parallel against one host alone. Commit to production is measured by bench.sh through
//! the quickstart (`shop_commit_to_prod_warm_s`).

use crate::pulls::{clean, config, timed_pull};
use anyhow::Context as _;
use ferry_testkit::{docker, docker_hosts, harness_var, unique_namespace};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Figures {
    pub build_cold_s: f64,
    pub build_warm_s: f64,
    pub image_mb: f64,
    pub pull_linked_single_s: f64,
    pub pull_linked_parallel4_s: f64,
}

/// The config repo's files and where Ferry lays them (the example's `files` table).
const OVERLAY: [(&str, &str); 6] = [
    ("Dockerfile", "Dockerfile"),
    ("env/production.env", ".env"),
    ("nginx/site.conf", "docker/nginx.conf"),
    ("nginx/nginx-main.conf", "docker/nginx-main.conf"),
    ("php/fpm.conf", "docker/php-fpm.conf"),
    ("bin/shop-serve", "docker/shop-serve"),
];

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/shop")
}

/// The build context Ferry's builder would make: the code, then ops' files over it.
fn context(dir: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(example().join("app/."))
        .arg(dir)
        .status()?;
    anyhow::ensure!(status.success(), "copying the shop's code failed");
    let config = example().join("config/shop");
    for (from, to) in OVERLAY {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().context("a file in a folder")?)?;
        std::fs::copy(config.join(from), &to).with_context(|| format!("copying {from}"))?;
    }
    Ok(())
}

fn build(host: &str, dir: &Path, tag: &str, revision: &str, no_cache: bool) -> anyhow::Result<f64> {
    let arg = format!("FERRY_REVISION={revision}");
    let mut args = vec!["build", "-q", "--build-arg", &arg, "-t", tag];
    if no_cache {
        args.push("--no-cache");
    }
    let dir = dir.to_str().context("a UTF-8 path")?;
    args.push(dir);
    let t = Instant::now();
    docker(host, None, &args)?;
    Ok(t.elapsed().as_secs_f64())
}

pub async fn figures() -> anyhow::Result<Figures> {
    let hosts = docker_hosts();
    let host = hosts.first().context("no Docker host")?.clone();
    let status = std::process::Command::new(example().join("bases.sh"))
        .env("DOCKER_HOST", &host)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "deploy/examples/shop/bases.sh failed");

    let dir = tempfile::tempdir()?;
    context(dir.path())?;
    let registry = harness_var("FERRY_TEST_REGISTRY");
    let repo = format!("bench/shop-{}", unique_namespace());
    let tag = format!("{registry}/{repo}:1");
    let build_cold_s = build(&host, dir.path(), &tag, "1", true)?;
    // One PHP file changed, as in most commits: only the code layers are rebuilt.
    let app = dir.path().join("src/App.php");
    let mut code = std::fs::read_to_string(&app)?;
    code.push_str("// changed by the benchmark\n");
    std::fs::write(&app, code)?;
    let warm_tag = format!("{registry}/{repo}:2");
    let build_warm_s = build(&host, dir.path(), &warm_tag, "2", false)?;
    let bytes: f64 = docker(
        &host,
        None,
        &["image", "inspect", "-f", "{{.Size}}", &warm_tag],
    )?
    .trim()
    .parse()?;

    // Pushed once; the linked registry serves the same storage.
    let login = tempfile::tempdir()?;
    let (user, pass) = (
        harness_var("FERRY_TEST_REGISTRY_USER"),
        harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    docker(
        &host,
        Some(login.path()),
        &["login", "-u", &user, "-p", &pass, &registry],
    )?;
    let pushed = docker(&host, Some(login.path()), &["push", &warm_tag])?;
    let digest = pushed
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|d| d.split_whitespace().next())
        .context("no digest in docker push's output")?
        .to_owned();
    let linked_ref = format!(
        "{}/{repo}@{digest}",
        harness_var("FERRY_BENCH_LINKED_REGISTRY")
    );
    let linked: Vec<(String, String)> = harness_var("FERRY_BENCH_LINKED_HOSTS")
        .split(',')
        .enumerate()
        .map(|(i, h)| (format!("l{}", i + 1), h.to_owned()))
        .collect();
    let cfg = config(&harness_var("FERRY_BENCH_LINKED_REGISTRY"), 8)?;
    clean(&linked, &linked_ref);
    let pull_linked_single_s = timed_pull(&cfg, &linked_ref, &linked[..1]).await?;
    clean(&linked, &linked_ref);
    let pull_linked_parallel4_s = timed_pull(&cfg, &linked_ref, &linked).await?;
    clean(&linked, &linked_ref);
    Ok(Figures {
        build_cold_s,
        build_warm_s,
        image_mb: bytes / 1e6,
        pull_linked_single_s,
        pull_linked_parallel4_s,
    })
}

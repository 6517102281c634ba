//! Docker hosts of the test run (`FERRY_TEST_DOCKER_HOSTS`), driven with the docker CLI
//! where a test needs to look at what Ferry did.

use anyhow::Context as _;
use std::process::Command;

/// The test run's Docker hosts (`unix://...` URLs).
pub fn docker_hosts() -> Vec<String> {
    crate::harness_var("FERRY_TEST_DOCKER_HOSTS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The build Docker daemon in its own network namespace behind NAT (the harness's
/// `dockerd-build`): what a production build host should be.
pub fn build_docker_host() -> String {
    crate::harness_var("FERRY_TEST_BUILD_DOCKER_HOST")
}

/// `docker -H host args...` with a private client config dir; stdout on success.
pub fn docker(
    host: &str,
    config_dir: Option<&std::path::Path>,
    args: &[&str],
) -> anyhow::Result<String> {
    let mut cmd = Command::new("docker");
    if let Some(dir) = config_dir {
        cmd.arg("--config").arg(dir);
    }
    let out = cmd
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .context("running docker")?;
    anyhow::ensure!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The base image test projects build `FROM`: busybox (Debian's static build) in an
/// image made `FROM scratch`, since nothing can be pulled here.
pub const BUSYBOX_BASE: &str = "ferry-test/busybox:1";

pub fn ensure_busybox_base(host: &str) -> anyhow::Result<()> {
    if docker(host, None, &["image", "inspect", BUSYBOX_BASE]).is_ok() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .context("copying /bin/busybox (package busybox-static)")?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )?;
    docker(
        host,
        None,
        &[
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            BUSYBOX_BASE,
            &dir.path().to_string_lossy(),
        ],
    )?;
    Ok(())
}

/// A busybox web image built on `host` as `ferry-test/<name>:<version>`: `/www/index.html`
/// holds `version`, and `/www/healthz` exists when `healthy`. Serve it with
/// `/bin/httpd -f -p 127.0.0.1:<port> -h /www`.
pub fn web_image(host: &str, name: &str, version: &str, healthy: bool) -> anyhow::Result<String> {
    ensure_busybox_base(host)?;
    let dir = tempfile::tempdir()?;
    let health = if healthy {
        " && echo ok > /www/healthz"
    } else {
        ""
    };
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {BUSYBOX_BASE}\nRUN [\"/bin/sh\", \"-c\", \"mkdir /www && echo {version} > /www/index.html{health}\"]\n"
        ),
    )?;
    let tag = format!("ferry-test/{name}:{version}");
    docker(
        host,
        None,
        &[
            "build",
            "-q",
            "--network",
            "host",
            "-t",
            &tag,
            &dir.path().to_string_lossy(),
        ],
    )?;
    Ok(tag)
}

/// Build `dockerfile` (which may start `FROM` [`BUSYBOX_BASE`]) on `host` as `tag`
/// (`<registry>/<repo>:<tag>` in the test registry), push it with the registry's
/// credentials, and return `<registry>/<repo>@sha256:...`.
pub fn build_and_push(host: &str, dockerfile: &str, tag: &str) -> anyhow::Result<String> {
    ensure_busybox_base(host)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("Dockerfile"), dockerfile)?;
    let login = tempfile::tempdir()?;
    let c = Some(login.path());
    let registry = crate::harness_var("FERRY_TEST_REGISTRY");
    let (user, pass) = (
        crate::harness_var("FERRY_TEST_REGISTRY_USER"),
        crate::harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    docker(
        host,
        c,
        &[
            "build",
            "-q",
            "--network",
            "host",
            "-t",
            tag,
            &dir.path().to_string_lossy(),
        ],
    )?;
    docker(host, c, &["login", "-u", &user, "-p", &pass, &registry])?;
    docker(host, c, &["push", "-q", tag])?;
    let repo_digest = docker(
        host,
        c,
        &[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            tag,
        ],
    )?;
    anyhow::ensure!(
        repo_digest.contains("@sha256:"),
        "no digest after pushing {tag}: {repo_digest}"
    );
    Ok(repo_digest)
}

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

/// Like [`web_image`] (healthy), and `/cgi-bin/slow` takes 2 s to answer
/// `slow-<version>`: requests a switch must not cut.
pub fn slow_web_image(host: &str, name: &str, version: &str) -> anyhow::Result<String> {
    let script = format!(
        "#!/bin/sh\\nsleep 2\\necho Content-Type: text/plain\\necho\\necho slow-{version}\\n"
    );
    www_image(
        host,
        name,
        version,
        &format!(
            "mkdir -p /www/cgi-bin && echo {version} > /www/index.html && echo ok > /www/healthz && printf '{script}' > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow"
        ),
    )
}

/// Like [`web_image`] (healthy), and `/cgi-bin/flaky` answers `flaky-<version>`, except
/// every `every`-th request (counted in the container; 0: never), which gets a 500: a
/// release a canary must catch.
pub fn flaky_web_image(
    host: &str,
    name: &str,
    version: &str,
    every: u32,
) -> anyhow::Result<String> {
    let script = format!(
        "#!/bin/sh\\nn=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n\\n\
         if [ {every} -gt 0 ] && [ $((n %% {every})) -eq 0 ]; then echo Status: 500 Internal Server Error; echo Content-Type: text/plain; echo; echo flaky-{version}-error; exit 0; fi\\n\
         echo Content-Type: text/plain\\necho\\necho flaky-{version}\\n"
    );
    www_image(
        host,
        name,
        version,
        &format!(
            "mkdir -p /www/cgi-bin /tmp && echo {version} > /www/index.html && echo ok > /www/healthz && printf '{script}' > /www/cgi-bin/flaky && chmod +x /www/cgi-bin/flaky"
        ),
    )
}

/// A busybox web image built on `host` as `ferry-test/<name>:<version>`: `/www/index.html`
/// holds `version`, and `/www/healthz` exists when `healthy`. Serve it with
/// `/bin/httpd -f -p 127.0.0.1:<port> -h /www`.
pub fn web_image(host: &str, name: &str, version: &str, healthy: bool) -> anyhow::Result<String> {
    let health = if healthy {
        " && echo ok > /www/healthz"
    } else {
        ""
    };
    let setup = format!("mkdir /www && echo {version} > /www/index.html{health}");
    www_image(host, name, version, &setup)
}

/// `ferry-test/<name>:<version>` on `host`: the busybox base with `setup` run in it.
fn www_image(host: &str, name: &str, version: &str, setup: &str) -> anyhow::Result<String> {
    ensure_busybox_base(host)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nRUN [\"/bin/sh\", \"-c\", \"{setup}\"]\n"),
    )?;
    let tag = format!("ferry-test/{name}:{version}");
    let context = dir.path().to_string_lossy();
    let args = ["build", "-q", "--network", "host", "-t", &tag, &context];
    docker(host, None, &args)?;
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

/// The reverse proxy image of the test runs: Debian's HAProxy 2.6 and socat in an image
/// made `FROM scratch` (nothing can be pulled here), like the production image
/// `deploy/proxy/Dockerfile`. Run it with `--network host`; it reads
/// `/etc/haproxy/haproxy.cfg`.
pub const PROXY_IMAGE: &str = "ferry-test/haproxy:2.6";

/// Make sure [`PROXY_IMAGE`] is on `host`, building it from the host's own `/usr/sbin/haproxy`,
/// `/usr/bin/socat` (packages haproxy, socat), their shared libraries and `/bin/busybox`
/// (for `sh`, `kill`, `mv`, `cat`) when it is not. Returns the image's tag. Safe when
/// several tests call it at once: a build that loses a race to another one is fine.
pub fn ensure_proxy_image(host: &str) -> anyhow::Result<String> {
    if docker(host, None, &["image", "inspect", PROXY_IMAGE]).is_ok() {
        return Ok(PROXY_IMAGE.to_owned());
    }
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let mut files = vec![
        "/usr/sbin/haproxy".to_owned(),
        "/usr/bin/socat".to_owned(),
        "/bin/busybox".to_owned(),
    ];
    for exe in ["/usr/sbin/haproxy", "/usr/bin/socat"] {
        for lib in shared_libraries(exe)? {
            if !files.contains(&lib) {
                files.push(lib);
            }
        }
    }
    for file in &files {
        // Same absolute path inside the image; `copy` follows symlinks, so the image holds
        // regular files (the loader's `/lib64` link and the libraries' version links).
        let to = root.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("an absolute path has a parent"))?;
        std::fs::copy(file, &to).with_context(|| format!("copying {file}"))?;
    }
    for empty in ["run/haproxy", "var/lib/haproxy/state", "etc/haproxy"] {
        std::fs::create_dir_all(root.join(empty))?;
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\n\
         COPY root/ /\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         ENTRYPOINT [\"/usr/sbin/haproxy\", \"-W\", \"-db\", \"-f\", \"/etc/haproxy/haproxy.cfg\"]\n",
    )?;
    let built = docker(
        host,
        None,
        &[
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            PROXY_IMAGE,
            &dir.path().to_string_lossy(),
        ],
    );
    match built {
        Ok(_) => Ok(PROXY_IMAGE.to_owned()),
        // Another test built it meanwhile.
        Err(_) if docker(host, None, &["image", "inspect", PROXY_IMAGE]).is_ok() => {
            Ok(PROXY_IMAGE.to_owned())
        }
        Err(e) => Err(e.context(format!("building {PROXY_IMAGE}"))),
    }
}

/// The absolute paths of the shared libraries `exe` loads, the dynamic loader included,
/// from `ldd`'s output.
fn shared_libraries(exe: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .with_context(|| format!("running ldd {exe}"))?;
    anyhow::ensure!(
        out.status.success(),
        "ldd {exe} failed (is its package installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`,
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`, `linux-vdso.so.1 (0x...)` (in the kernel).
        let line = line.trim();
        anyhow::ensure!(
            !line.contains("not found"),
            "{exe} needs a library that is missing: {line}"
        );
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(path.to_owned());
        }
    }
    anyhow::ensure!(
        libs.iter().any(|l| l.contains("/ld-linux")),
        "no dynamic loader in ldd's output for {exe}: {text}"
    );
    Ok(libs)
}

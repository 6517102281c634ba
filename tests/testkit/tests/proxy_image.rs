//! The test proxy image (`ferry_testkit::ensure_proxy_image`) works as Ferry will use it:
//! HAProxy with host networking serves a frontend port from a backend container, its
//! runtime socket answers through `docker exec ... socat`, the state file can be persisted
//! with `sh`/`mv`, and a reload with `kill -USR2 1` keeps it serving.

use ferry_testkit::{
    docker, docker_hosts, ensure_proxy_image, free_port, http_request, wait_until,
};
use std::time::Duration;

/// Removes the test's containers, also when an assertion failed.
struct Containers<'a> {
    host: &'a str,
    names: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = docker(self.host, None, &["rm", "-f", name]);
        }
    }
}

/// A runtime-API command through the admin socket, as Ferry sends it.
fn cli(host: &str, container: &str, cmds: &str) -> anyhow::Result<String> {
    docker(
        host,
        None,
        &[
            "exec",
            container,
            "sh",
            "-c",
            "printf '%s\\n' \"$1\" | socat -t5 stdio UNIX-CONNECT:/run/haproxy/admin.sock",
            "sh",
            cmds,
        ],
    )
}

async fn get(port: u16) -> Option<(u16, String)> {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    http_request(addr, "GET", "/", &[], b"").await.ok()
}

#[tokio::test]
async fn proxy_image_serves_and_answers_on_its_admin_socket() {
    let host = &docker_hosts()[0];
    let image = ensure_proxy_image(host).unwrap();
    let web = ferry_testkit::web_image(host, "proxy-web", "v1", true).unwrap();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (web_name, proxy_name) = (format!("proxy-web-{id}"), format!("ferry-proxy-{id}"));
    let _cleanup = Containers {
        host,
        names: vec![web_name.clone(), proxy_name.clone()],
    };
    let (web_port, fe_port) = (free_port(), free_port());

    docker(
        host,
        None,
        &[
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            &web_name,
            &web,
            "/bin/httpd",
            "-f",
            "-p",
            &format!("127.0.0.1:{web_port}"),
            "-h",
            "/www",
        ],
    )
    .unwrap();

    let cfg = format!(
        "global
    master-worker
    noreuseport
    stats socket /run/haproxy/admin.sock mode 600 level admin
    stats timeout 30s
    server-state-base /var/lib/haproxy/state
    hard-stop-after 10s
    log stdout format raw local0 notice
defaults
    mode http
    log global
    option idle-close-on-response
    load-server-state-from-file local
    balance roundrobin
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    default-server check inter 500ms rise 2 fall 2 weight 100
frontend fe_test
    bind 127.0.0.1:{fe_port}
    default_backend be_test
backend be_test
    option httpchk GET /healthz
    http-check expect status 200
    server r0-{web_port} 127.0.0.1:{web_port}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    docker(
        host,
        None,
        &["create", "--network", "host", "--name", &proxy_name, &image],
    )
    .unwrap();
    docker(
        host,
        None,
        &[
            "cp",
            &cfg_path.to_string_lossy(),
            &format!("{proxy_name}:/etc/haproxy/haproxy.cfg"),
        ],
    )
    .unwrap();
    docker(host, None, &["start", &proxy_name]).unwrap();
    let logs = || docker(host, None, &["logs", &proxy_name]).unwrap_or_default();

    // The runtime socket answers.
    let answers = wait_until(Duration::from_secs(10), || async {
        cli(host, &proxy_name, "show info").is_ok_and(|out| out.contains("Version: 2.6"))
    })
    .await;
    assert!(
        answers,
        "the admin socket does not answer; logs:\n{}",
        logs()
    );
    let stat = cli(host, &proxy_name, "show stat").unwrap();
    assert!(
        stat.starts_with("# pxname,svname,") && stat.contains(&format!("be_test,r0-{web_port},")),
        "show stat: {stat}"
    );

    // A request through the frontend gets the web page.
    let served = wait_until(Duration::from_secs(10), || async {
        get(fe_port).await == Some((200, "v1\n".to_owned()))
    })
    .await;
    assert!(
        served,
        "no v1 through the proxy: {:?}; show stat: {}; logs:\n{}",
        get(fe_port).await,
        cli(host, &proxy_name, "show stat").unwrap_or_default(),
        logs()
    );
    let checked = wait_until(Duration::from_secs(10), || async {
        cli(host, &proxy_name, "show stat be_test 4 -1").is_ok_and(|s| s.contains("L7OK"))
    })
    .await;
    assert!(checked, "the health check did not pass; logs:\n{}", logs());

    // Runtime changes, persisted to the state file with the image's sh and mv, survive a
    // reload (kill -USR2 to the master, pid 1), and the proxy keeps serving.
    let server = format!("be_test/r0-{web_port}");
    let out = cli(host, &proxy_name, &format!("set server {server} weight 42")).unwrap();
    assert!(out.trim().is_empty(), "set server: {out}");
    docker(
        host,
        None,
        &[
            "exec",
            &proxy_name,
            "sh",
            "-c",
            "echo 'show servers state be_test' | socat -t5 stdio UNIX-CONNECT:/run/haproxy/admin.sock > /var/lib/haproxy/state/be_test.tmp && mv /var/lib/haproxy/state/be_test.tmp /var/lib/haproxy/state/be_test",
        ],
    )
    .unwrap();
    let state = docker(
        host,
        None,
        &["exec", &proxy_name, "cat", "/var/lib/haproxy/state/be_test"],
    )
    .unwrap();
    assert!(
        state.contains(&format!("r0-{web_port}")),
        "state file: {state}"
    );
    let pid_before = cli(host, &proxy_name, "show info").unwrap();
    docker(host, None, &["exec", &proxy_name, "kill", "-USR2", "1"]).unwrap();
    let reloaded = wait_until(Duration::from_secs(10), || async {
        cli(host, &proxy_name, "show info").is_ok_and(|info| {
            let pid = |s: &str| s.lines().find(|l| l.starts_with("Pid:")).map(str::to_owned);
            pid(&info).is_some() && pid(&info) != pid(&pid_before)
        })
    })
    .await;
    assert!(
        reloaded,
        "no new worker after the reload; logs:\n{}",
        logs()
    );
    let weight = cli(host, &proxy_name, &format!("get weight {server}")).unwrap();
    assert!(
        weight.starts_with("42 "),
        "the weight was not restored from the state file: {weight}; logs:\n{}",
        logs()
    );
    assert_eq!(get(fe_port).await, Some((200, "v1\n".to_owned())));
    let running = docker(
        host,
        None,
        &["inspect", "--format", "{{.State.Running}}", &proxy_name],
    )
    .unwrap();
    assert_eq!(running, "true", "logs:\n{}", logs());
}

//! Every service binary, as deployed: reads its config, connects, declares its queue,
//! reports ready, serves metrics, and exits cleanly on SIGTERM.

use ferry_testkit::{amqp_url, broker_config, free_port, http_request};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Kills what it holds when dropped, so a failing assertion leaves no process behind.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The workspace's binaries sit next to the directory of this test executable.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with --workspace",
        path.display()
    );
    path
}

async fn status(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, &[], b"").await.ok()
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not exit within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn every_service_binary_starts_gets_ready_and_stops_on_sigterm() {
    let ns = broker_config(&amqp_url()).namespace;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!("[broker]\nurl = \"{}\"\nnamespace = \"{ns}\"\n", amqp_url());
    let mut admins = Vec::new();
    for svc in ferry_shared::SERVICES {
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        config.push_str(&format!(
            "[services.{}]\nadmin_listen = \"{admin}\"\n",
            svc.replace('-', "_")
        ));
        if svc == "hook-receiver" {
            config.push_str(&format!("listen = \"127.0.0.1:{}\"\n", free_port()));
        }
        admins.push((svc, admin));
    }
    let path = dir.path().join("ferry.toml");
    std::fs::write(&path, config).unwrap();

    let mut reaper = Reaper(Vec::new());
    for (svc, _) in &admins {
        let child = Command::new(binary(svc))
            .env("FERRY_CONFIG", &path)
            .spawn()
            .unwrap();
        reaper.0.push(child);
    }

    for (svc, admin) in &admins {
        let ready = ferry_testkit::wait_until(Duration::from_secs(20), || async {
            matches!(status(*admin, "/readyz").await, Some((200, _)))
        })
        .await;
        assert!(ready, "{svc} never became ready");
        let (code, metrics) = status(*admin, "/metrics").await.unwrap();
        assert_eq!(code, 200);
        assert!(
            metrics.contains(&format!("ferry_broker_connected{{service=\"{svc}\"}} 1")),
            "{svc}: {metrics}"
        );
        assert_eq!(status(*admin, "/healthz").await.unwrap().0, 200);
    }
    for ((svc, _), child) in admins.iter().zip(std::mem::take(&mut reaper.0)) {
        let exit = stop(child);
        assert!(exit.success(), "{svc} exited with {exit}");
    }
}

#[tokio::test]
async fn readyz_says_not_ready_while_the_broker_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            "[broker]\nurl = \"amqp://guest:guest@127.0.0.1:{}/%2f\"\nconnect_timeout_ms = 500\n[services.builder]\nadmin_listen = \"{admin}\"\n",
            free_port()
        ),
    )
    .unwrap();
    let child = Command::new(binary("builder"))
        .env("FERRY_CONFIG", &path)
        .spawn()
        .unwrap();
    let answered = ferry_testkit::wait_until(Duration::from_secs(10), || async {
        status(admin, "/healthz").await.is_some()
    })
    .await;
    assert!(answered, "admin endpoint never answered");
    let (code, body) = status(admin, "/readyz").await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("RabbitMQ"));
    assert!(stop(child).success());
}

//! A repository URL with a token (`http://user:token@host/repo.git`): the builder must
//! clone with it, and record it nowhere: not in the image's
//! `org.opencontainers.image.source` label (inspected on the real image), not in any
//! event, not in the build log. The git server is Python's static HTTP server serving
//! a bare repository (git's "dumb" HTTP protocol).

mod common;

use common::build::*;
use ferry_shared::event::Event;
use ferry_testkit::{free_port, harness_var};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "tok-leak-4242abcdef";

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serve `dir` on 127.0.0.1:`port` and wait until it answers.
fn serve(dir: &std::path::Path, port: u16) -> Served {
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Served(child)
}

#[tokio::test]
async fn a_token_in_the_git_url_is_in_no_label_event_or_log() {
    let root = tempfile::tempdir().unwrap();
    let code = root.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    git(&code, &["init", "-q", "-b", "main"]);
    std::fs::write(code.join("index.html"), "<h1>token</h1>\n").unwrap();
    git(&code, &["add", "."]);
    git(&code, &["commit", "-q", "-m", "first"]);
    let sha = git(&code, &["rev-parse", "HEAD"]);
    let served = root.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            code.to_str().unwrap(),
            "served/code.git",
        ],
    );
    git(&served.join("code.git"), &["update-server-info"]);
    let port = free_port();
    let _server = serve(&served, port);
    let url = format!("http://ferry-bot:{TOKEN}@127.0.0.1:{port}/code.git");

    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(
        &format!("{{ kind = \"git\", url = \"{url}\" }}"),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    )
    .await;
    let run = trigger(&s.cfg, &sha).await;
    let pushed = tap
        .expect_run("image.pushed", run.run_id, Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    let content = read_in_image(&p.image, &["/app/index.html"]);
    assert_eq!(
        content, "<h1>token</h1>",
        "cloned with the token, built that commit"
    );
    let labels = labels(&p.image);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        format!("http://127.0.0.1:{port}/code.git"),
        "{labels}"
    );
    assert!(!labels.to_string().contains(TOKEN), "{labels}");

    // A failing clone quotes the URL: the token is scrubbed from the failure.
    let gone = free_port();
    let text = std::fs::read_to_string(&s.config_path).unwrap();
    let text = text.replace(
        &url,
        &format!("http://ferry-bot:{TOKEN}@127.0.0.1:{gone}/x.git"),
    );
    let bad_cfg = std::sync::Arc::new(
        ferry_shared::config::FerryConfig::from_toml_with_env(
            &text,
            std::path::Path::new("t.toml"),
        )
        .unwrap(),
    );
    let failed_stages = start_stages(&bad_cfg).await;
    stages.stop().await;
    let failing = trigger(&bad_cfg, &sha).await;
    let failed = tap
        .expect_run("build.failed", failing.run_id, Duration::from_secs(120))
        .await
        .unwrap();
    failed_stages.stop().await;

    let mut events = tap.drain(Duration::from_millis(500)).await;
    events.extend([pushed, failed]);
    for e in &events {
        let json = serde_json::to_string(e).unwrap();
        assert!(!json.contains(TOKEN), "{}: {json}", e.routing_key());
    }
    let log = std::fs::read_to_string(builder::log_path(&s.cfg, &run.run_id.to_string()))
        .unwrap_or_default();
    assert!(!log.contains(TOKEN), "{log}");
}

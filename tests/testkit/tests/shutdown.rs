//! SIGTERM to a real stage process while its handler runs: the message is finished
//! or given back, never lost.

use ferry_shared::bus::Publisher;
use ferry_shared::bus::topology::queue_name;
use ferry_testkit::{Tap, amqp_url, broker_config, queue_len, source_changed, wait_until};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Stage {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

fn spawn_slow_stage(namespace: &str, handler_ms: u64, grace_secs: u64) -> Stage {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nurl = \"{}\"\nnamespace = \"{namespace}\"\n\n[services.builder]\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace_secs = {grace_secs}\n",
            amqp_url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slow-stage"))
        .env("FERRY_CONFIG", &config)
        .env("SLOW_STAGE_MS", handler_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Stage {
        child,
        lines,
        _dir: dir,
    }
}

impl Stage {
    fn wait_for_handler(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the stage never started its handler")
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the stage did not exit within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn declare_and_publish(
    cfg: &ferry_shared::config::BrokerConfig,
) -> ferry_shared::event::Envelope {
    let conn = lapin::Connection::connect(cfg.url.expose(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ferry_shared::bus::Topology::for_stage(cfg, &ferry_shared::pipeline::stage("builder"))
        .declare(&ch)
        .await
        .unwrap();
    let event = source_changed("21");
    Publisher::new(cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn sigterm_during_a_handler_lets_it_finish_within_the_grace_period() {
    let cfg = broker_config(&amqp_url());
    let mut tap = Tap::new(cfg.url.expose(), &cfg.namespace, "image.built")
        .await
        .unwrap();
    let event = declare_and_publish(&cfg).await;
    let mut stage = spawn_slow_stage(&cfg.namespace, 2_000, 20);
    assert_eq!(
        stage.wait_for_handler(),
        format!("handling {}", event.event_id)
    );

    stage.sigterm();
    let status = stage.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");

    let built = tap
        .expect("image.built", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(built.causation_id, Some(event.event_id));
    assert_eq!(
        queue_len(&amqp_url(), &queue_name(&cfg.namespace, "builder"))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn sigterm_past_the_grace_period_requeues_the_message_for_another_consumer() {
    let cfg = broker_config(&amqp_url());
    let mut tap = Tap::new(cfg.url.expose(), &cfg.namespace, "image.built")
        .await
        .unwrap();
    let event = declare_and_publish(&cfg).await;
    let mut stage = spawn_slow_stage(&cfg.namespace, 60_000, 1);
    stage.wait_for_handler();

    let asked = Instant::now();
    stage.sigterm();
    let status = stage.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        asked.elapsed()
    );

    let queue = queue_name(&cfg.namespace, "builder");
    assert!(
        wait_until(Duration::from_secs(5), || async {
            queue_len(&amqp_url(), &queue).await.unwrap_or(0) == 1
        })
        .await,
        "the unfinished message is not back in the queue"
    );
    assert!(
        tap.next(Duration::from_millis(300)).await.is_none(),
        "an unfinished handler published"
    );

    // The next consumer finishes it.
    let mut next = spawn_slow_stage(&cfg.namespace, 10, 5);
    next.wait_for_handler();
    let built = tap
        .expect("image.built", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(built.causation_id, Some(event.event_id));
    next.sigterm();
    next.wait_exit(Duration::from_secs(10));
}

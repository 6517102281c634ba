//! Logs as operators read them: with `log.format = "json"`, every line is a JSON
//! object, and the lines written while handling an event carry its run and event ids.

use ferry_shared::bus::Publisher;
use ferry_testkit::{Tap, amqp_url, broker_config, source_changed};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn json_logs_carry_the_run_id_and_event_id_of_the_event_being_handled() {
    let cfg = broker_config(&amqp_url());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!("[broker]\nurl = \"{}\"\nnamespace = \"{}\"\n[services.builder]\nadmin_listen = \"127.0.0.1:0\"\n", amqp_url(), cfg.namespace),
    )
    .unwrap();
    let mut tap = Tap::new(&amqp_url(), &cfg.namespace, "image.built")
        .await
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slow-stage"))
        .env("FERRY_CONFIG", &config)
        .env("FERRY__LOG__FORMAT", "json")
        .env("SLOW_STAGE_MS", "10")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ferry_shared::bus::Topology::for_stage(&cfg, &ferry_shared::pipeline::stage("builder"))
        .declare(&ch)
        .await
        .unwrap();
    let event = source_changed("3");
    Publisher::new(&cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();
    tap.expect("image.built", Duration::from_secs(20))
        .await
        .unwrap();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success());

    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    let handled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "slow work finished")
        .unwrap_or_else(|| panic!("no line from the handler in:\n{stderr}"));
    assert_eq!(
        handled["span"]["run_id"],
        event.run_id.to_string(),
        "{handled}"
    );
    assert_eq!(
        handled["span"]["event_id"],
        event.event_id.to_string(),
        "{handled}"
    );
    assert_eq!(handled["span"]["kind"], "source.changed");
}

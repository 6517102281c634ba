//! RabbitMQ under chaos: restarting the harness's private node (same data directory,
//! same port), and, at the end, looking into every queue of the namespace for the
//! messages of runs that did not finish.

use anyhow::Context as _;
use ferry_shared::bus::topology::{parked_queue_name, queue_name, retry_queue_name};
use ferry_shared::event::Envelope;
use ferry_testkit::harness_var;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the node goes down in a restart.
#[derive(Clone, Copy, Debug)]
pub enum Down {
    /// `rabbitmqctl stop`: an orderly shutdown.
    Stop,
    /// SIGKILL of the node: a crash.
    Kill,
}

/// Take the node down, wait `pause`, start it again on the same data and port. Returns
/// how long it did not accept connections.
pub async fn restart(how: Down, pause: Duration, log: &Path) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    node(
        match how {
            Down::Stop => "stop",
            Down::Kill => "kill",
        },
        log,
    )
    .await?;
    tokio::time::sleep(pause).await;
    node("start", log).await?;
    Ok(t0.elapsed())
}

async fn node(action: &str, log: &Path) -> anyhow::Result<()> {
    let script = harness_var("FERRY_TEST_RABBIT_NODE_SCRIPT");
    let dir = harness_var("FERRY_TEST_RABBIT_DIR");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&script).arg(action).arg(&dir);
    if action == "start" {
        cmd.arg(harness_var("FERRY_TEST_AMQP_PORT"));
    }
    // To a file, not a pipe: the node it starts would hold a pipe open forever.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .await
        .with_context(|| format!("running {script} {action}"))?;
    anyhow::ensure!(
        status.success(),
        "rabbit-node.sh {action} {dir} failed ({status}); see {}",
        log.display()
    );
    Ok(())
}

/// Every queue where a stage's work for a run can wait: the stage's own queue, its
/// retry queues and its parking lot.
pub fn work_queues(cfg: &ferry_shared::config::BrokerConfig) -> Vec<String> {
    let mut names = Vec::new();
    for spec in ferry_shared::pipeline::stages() {
        names.push(queue_name(&cfg.namespace, spec.service));
        for d in &cfg.retry_delays_ms {
            names.push(retry_queue_name(&cfg.namespace, spec.service, *d));
        }
        names.push(parked_queue_name(&cfg.namespace, spec.service));
    }
    names
}

/// Runs with a message in any of `queues`, and where: read with `basic.get` without
/// acking, then the channel is closed so RabbitMQ puts every message back. Call it with
/// the services stopped, so nothing is unacked and hidden in a consumer.
pub async fn waiting(url: &str, queues: &[String]) -> anyhow::Result<HashMap<Uuid, Vec<String>>> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let mut found: HashMap<Uuid, Vec<String>> = HashMap::new();
    for q in queues {
        let ch = conn.create_channel().await?;
        let declared = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let Ok(declared) = declared else {
            continue; // never declared (a stage that had nothing to retry)
        };
        for _ in 0..declared.message_count() {
            let Some(msg) = ch
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            if let Ok(e) = Envelope::from_json(&msg.delivery.data) {
                found
                    .entry(e.run_id.into())
                    .or_default()
                    .push(format!("{} in {q}", e.routing_key()));
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), ch.close(200, "browsed".into())).await;
    }
    let _ = conn.close(200, "bye".into()).await;
    Ok(found)
}

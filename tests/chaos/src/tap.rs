//! The record of what happened: a durable quorum queue bound to `#` on the namespace's
//! exchange, declared before the first run, so it holds every event published while
//! RabbitMQ restarts and while this process reconnects. Consumed with manual acks (an
//! event is acked once written down); repeats are recognised by their event id.

use ferry_shared::bus::topology::{declare_exchange, exchange_name};
use ferry_shared::event::Envelope;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One event as the tap saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub routing_key: String,
    pub kind: &'static str,
    /// The envelope's time (set by the publisher), in nanoseconds since the epoch: to
    /// order events against what the Docker hosts record.
    pub time_ns: i64,
}

#[derive(Default)]
pub struct Record {
    /// Every distinct event of each run, in arrival order.
    pub runs: HashMap<Uuid, Vec<Seen>>,
    /// Ids of the events seen, to tell a redelivery from a new event.
    ids: HashSet<Uuid>,
    /// Deliveries of an event already seen (at-least-once delivery at work).
    pub repeats: u64,
    /// Deliveries that were not a Ferry event.
    pub undecodable: u64,
    /// When the last new event arrived (to wait for quiet before counting).
    pub last_new: Option<Instant>,
    /// Routing keys of new events as they arrive, for kills aimed at work in flight.
    pub feed: Option<tokio::sync::broadcast::Sender<String>>,
}

pub type Shared = Arc<Mutex<Record>>;

/// The tap's queue: durable and quorum, unlike the tests' exclusive tap.
pub fn queue(namespace: &str) -> String {
    format!("{namespace}.chaos-tap")
}

/// Declare the tap (idempotent); called before any service runs.
/// The connection is returned with the channel: it must outlive it.
pub async fn declare(
    url: &str,
    namespace: &str,
) -> anyhow::Result<(lapin::Connection, lapin::Channel)> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let exchange = exchange_name(namespace);
    declare_exchange(&ch, &exchange).await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let q = queue(namespace);
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await?;
    ch.queue_bind(
        q.as_str().into(),
        exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok((conn, ch))
}

/// Consume the tap until `stop` fires, reconnecting whenever RabbitMQ goes away (to the
/// next of `urls`: a cluster's nodes take turns). Every event is also appended to
/// `journal` (one JSON line each) for post-mortems.
pub async fn follow(
    urls: Vec<String>,
    namespace: String,
    record: Shared,
    journal: std::path::PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut file = std::fs::File::create(&journal).ok();
    let mut reconnects = 0u32;
    while !*stop.borrow() {
        let consumed = tokio::select! {
            r = consume(&urls[reconnects as usize % urls.len()], &namespace, &record, &mut file) => r,
            _ = stop.changed() => break,
        };
        if let Err(e) = consumed {
            reconnects += 1;
            if reconnects == 1 || reconnects.is_multiple_of(20) {
                eprintln!("ferry-chaos: tap: {e}; reconnecting (#{reconnects})");
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn consume(
    url: &str,
    namespace: &str,
    record: &Shared,
    journal: &mut Option<std::fs::File>,
) -> anyhow::Result<()> {
    let (_conn, ch) = tokio::time::timeout(Duration::from_secs(5), declare(url, namespace))
        .await
        .map_err(|_| anyhow::anyhow!("connecting timed out"))??;
    ch.basic_qos(200, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            queue(namespace).as_str().into(),
            "ferry-chaos-tap".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        {
            let mut r = record.lock().expect("tap record");
            match Envelope::from_json(&delivery.data) {
                Ok(e) => {
                    if r.ids.insert(e.event_id) {
                        if let Some(f) = journal.as_mut() {
                            let _ = f.write_all(&delivery.data);
                            let _ = f.write_all(b"\n");
                        }
                        r.last_new = Some(Instant::now());
                        if let Some(feed) = &r.feed {
                            let _ = feed.send(e.routing_key());
                        }
                        r.runs.entry(e.run_id.into()).or_default().push(Seen {
                            routing_key: e.routing_key(),
                            kind: e.kind(),
                            time_ns: e.time.timestamp_nanos_opt().unwrap_or_default(),
                        });
                    } else {
                        r.repeats += 1;
                    }
                }
                Err(_) => r.undecodable += 1,
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    anyhow::bail!("the tap's consumer ended (connection lost)")
}

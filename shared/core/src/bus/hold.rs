//! Approval holds, kept in RabbitMQ. A run waiting for a person is one message (its
//! `approval.requested` event) alone in a queue named after the run. Whoever takes the
//! message decides: `ferry approve`, `ferry reject`, or the queue's message TTL, which
//! dead-letters it to the events exchange as `hold.expired.<env>` for the updater.
//! RabbitMQ hands a message to one taker only, so approve, reject and expiry cannot
//! both happen, across any number of API replicas and without a database. A hold
//! survives broker restarts and the loss of a cluster node (a durable quorum queue); the
//! queue deletes itself an hour after its hold ended.

use super::connect::channel_error;
use super::{BusError, connect, topology};
use crate::config::BrokerConfig;
use crate::event::Envelope;
use crate::event::RunId;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use std::time::Duration;

/// One queue per run and environment: a run can be held more than once (a manual
/// staging, then a manual production), each with its own expiry.
pub fn queue_name(namespace: &str, run_id: impl Into<RunId>, environment: &str) -> String {
    let run_id = run_id.into();
    format!("{namespace}.hold.{run_id}.{environment}")
}

/// The routing key an expired hold of `environment` comes back with.
pub fn expired_key(environment: &str) -> String {
    format!("hold.expired.{environment}")
}

/// Hold `request` (an `approval.requested` event with its environment set) for `ttl`.
/// Placing the same run's hold again while it waits changes nothing.
pub async fn place(cfg: &BrokerConfig, request: &Envelope, ttl: Duration) -> Result<(), BusError> {
    let env = request.environment.as_deref().unwrap_or_default();
    let queue = queue_name(&cfg.namespace, request.run_id, env);
    let (conn, channel) =
        connect::confirming_channel(cfg, &format!("hold {}", request.run_id)).await?;
    let ttl_ms = ttl.as_millis().min(i64::MAX as u128) as i64;
    let mut args = FieldTable::default();
    // Quorum: a held run must stay decidable while one broker node is down.
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(topology::exchange_name(&cfg.namespace).into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(expired_key(env).into()),
    );
    args.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(ttl_ms.saturating_add(3_600_000)),
    );
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map_err(|source| BusError::Declare {
            name: queue.clone(),
            source,
        })?;
    let exchange = topology::bind_register(&channel, &cfg.namespace, &queue).await?;
    if declared.message_count() == 0 {
        channel
            .basic_publish(
                exchange.as_str().into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &request.to_json(),
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_message_id(request.event_id.to_string().into()),
            )
            .await
            .map_err(channel_error("basic.publish"))?
            .await
            .map_err(channel_error("publisher confirm"))?;
    }
    tidy(conn.close(200, "hold placed".into())).await;
    Ok(())
}

/// The longest one step on a hold may wait for RabbitMQ. A quorum queue whose node just
/// died can leave an operation unanswered (a CI run saw `ferry approve`'s steps wait for
/// minutes): an operator is told to try again instead of waiting forever.
const STEP_PATIENCE: Duration = Duration::from_secs(10);

/// `step` within [`STEP_PATIENCE`], its lapin error or a stall as a [`BusError`].
async fn bounded<T>(
    step: &'static str,
    fut: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(STEP_PATIENCE, fut).await {
        Ok(r) => r.map_err(channel_error(step)),
        Err(_) => Err(BusError::Stalled {
            step,
            after: STEP_PATIENCE,
        }),
    }
}

/// A best-effort step (closing, tidying): bounded, its outcome ignored.
async fn tidy<T>(fut: impl std::future::Future<Output = T>) {
    let _ = tokio::time::timeout(STEP_PATIENCE, fut).await;
}

/// A hold taken off its queue: nobody else can take it until it is released.
pub struct Taken {
    pub request: Envelope,
    conn: Connection,
    channel: Channel,
    queue: String,
    message: BasicGetMessage,
}

impl Taken {
    /// The decision is recorded (published): the hold is gone for good.
    pub async fn settle(self) -> Result<(), BusError> {
        bounded(
            "basic.ack",
            self.message.delivery.ack(BasicAckOptions::default()),
        )
        .await?;
        // Unconditionally: a hold queue holds its one message, just acked, and quorum
        // queues refuse `if-empty` (the delete failed and left an empty queue behind that
        // later probes took for a hold whose leader had just moved).
        tidy(
            self.channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default()),
        )
        .await;
        tidy(self.conn.close(200, "hold settled".into())).await;
        Ok(())
    }

    /// The decision could not be recorded: put the hold back for another try.
    pub async fn release(self) {
        tidy(self.message.delivery.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        }))
        .await;
        tidy(self.conn.close(200, "hold released".into())).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the held request of run {0} is not a Ferry event: {1}")]
    Undecodable(RunId, String),
}

/// A fresh channel and the number of messages in hold queue `queue`, `None` when there is
/// no such queue. A passive declare of a missing queue closes its channel, hence a
/// channel per probe.
async fn probe(
    conn: &lapin::Connection,
    queue: &str,
) -> Result<(lapin::Channel, Option<u32>), BusError> {
    let channel = bounded("channel.open", conn.create_channel()).await?;
    let declared = bounded(
        "queue.declare",
        channel.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await;
    match declared {
        Ok(q) => Ok((channel, Some(q.message_count()))),
        // A stall is not "no such queue": the caller must not answer "nothing held".
        Err(e @ BusError::Stalled { .. }) => Err(e),
        Err(_) => Ok((channel, None)),
    }
}

/// [`probe`], asked again for a while when the queue exists but reports no message. On a
/// cluster, a quorum queue whose leader just died answers "0 messages" until a new leader
/// is elected (0.1-0.4 s measured on RabbitMQ 3.10): an approval in that moment must not be
/// told there is nothing to approve. A hold queue that exists empty otherwise is one that
/// expired (it deletes itself an hour later), so the wait only delays that answer.
async fn probe_waiting(
    conn: &lapin::Connection,
    queue: &str,
) -> Result<(lapin::Channel, Option<u32>), BusError> {
    const PATIENCE: Duration = Duration::from_secs(2);
    const PAUSE: Duration = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (channel, waiting) = probe(conn, queue).await?;
        if waiting != Some(0) || tokio::time::Instant::now() + PAUSE > deadline {
            return Ok((channel, waiting));
        }
        tidy(channel.close(200, "probed".into())).await;
        tokio::time::sleep(PAUSE).await;
    }
}

/// Take run `run_id`'s hold, if it has one waiting in one of `environments`.
pub async fn take(
    cfg: &BrokerConfig,
    run_id: impl Into<RunId>,
    environments: &[&str],
) -> Result<Option<Taken>, TakeError> {
    let run_id = run_id.into();
    let conn = connect::connect(cfg, &format!("decide {run_id}")).await?;
    for env in environments {
        let queue = queue_name(&cfg.namespace, run_id, env);
        let (channel, waiting) = probe_waiting(&conn, &queue).await?;
        if waiting.is_none() {
            continue;
        }
        let got = bounded(
            "basic.get",
            channel.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }),
        )
        .await?;
        let Some(message) = got else {
            tidy(channel.close(200, "no hold".into())).await;
            continue;
        };
        return match Envelope::from_json(&message.delivery.data) {
            Ok(request) => Ok(Some(Taken {
                request,
                conn,
                channel,
                queue,
                message,
            })),
            Err(e) => {
                tidy(message.delivery.nack(BasicNackOptions::default())).await;
                tidy(conn.close(200, "bad hold".into())).await;
                Err(TakeError::Undecodable(run_id, e.to_string()))
            }
        };
    }
    tidy(conn.close(200, "no hold".into())).await;
    Ok(None)
}

/// The first of `environments` where run `run_id` has a hold waiting, without taking
/// it (so an operator who may not answer it leaves it untouched).
pub async fn held_in(
    cfg: &BrokerConfig,
    run_id: impl Into<RunId>,
    environments: &[&str],
) -> Result<Option<String>, BusError> {
    let run_id = run_id.into();
    let conn = connect::connect(cfg, &format!("look up {run_id}")).await?;
    let mut found = None;
    for env in environments {
        let queue = queue_name(&cfg.namespace, run_id, env);
        let (_channel, waiting) = probe_waiting(&conn, &queue).await?;
        if waiting.is_some_and(|n| n > 0) {
            found = Some((*env).to_owned());
            break;
        }
    }
    tidy(conn.close(200, "looked up".into())).await;
    Ok(found)
}

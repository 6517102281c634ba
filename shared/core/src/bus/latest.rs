//! A few recent values, kept in RabbitMQ: every offer is a message in a queue bounded to
//! the last [`KEPT`] offers, and reading looks at all of them without consuming any.
//! The updater offers each requested run (its place and run id) per (project,
//! environment); whoever holds that environment's deploy lock reads them, so a deploy
//! that waited for the lock stands down when a newer one was requested meanwhile. Only
//! the lock holder reads, so no other reader hides messages from it. The values are
//! text the caller defines; what it cannot read it skips.

use super::connect::channel_error;
use super::{BusError, connect};
use crate::config::BrokerConfig;
use lapin::options::{BasicGetOptions, BasicNackOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};

/// Offers kept; the oldest are dropped beyond this.
const KEPT: i64 = 16;

pub struct Latest {
    _conn: Connection,
    channel: Channel,
    queue: String,
    /// Offers go through the updater's direct exchange, not the default one.
    exchange: String,
}

impl Latest {
    pub async fn open(cfg: &BrokerConfig, name: &str) -> Result<Self, BusError> {
        let queue = format!("{}.latest.{name}", cfg.namespace);
        let (conn, channel) = connect::confirming_channel(cfg, &format!("latest {name}")).await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(KEPT));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        channel
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
        let exchange = super::topology::bind_register(&channel, &cfg.namespace, &queue).await?;
        Ok(Self {
            _conn: conn,
            channel,
            queue,
            exchange,
        })
    }

    /// The values offered (at most [`KEPT`], oldest first), all left in place.
    pub async fn recent(&self) -> Result<Vec<String>, BusError> {
        let mut held = Vec::new();
        let mut values = Vec::new();
        for _ in 0..KEPT {
            let got = self
                .channel
                .basic_get(
                    self.queue.as_str().into(),
                    BasicGetOptions { no_ack: false },
                )
                .await
                .map_err(channel_error("basic.get"))?;
            let Some(msg) = got else { break };
            if let Ok(v) = std::str::from_utf8(&msg.delivery.data) {
                values.push(v.to_owned());
            }
            held.push(msg);
        }
        for msg in held {
            let _ = msg
                .delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await;
        }
        Ok(values)
    }

    /// Add a value.
    pub async fn offer(&self, value: &str) -> Result<(), BusError> {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                value.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .map_err(channel_error("basic.publish"))?
            .await
            .map_err(channel_error("publisher confirm"))?;
        Ok(())
    }
}

//! Reading the run history: every event, in publish order, from the history stream
//! (see [`Topology::history`]). A stream is read without being consumed, so any
//! number of readers (API replicas) each see everything RabbitMQ still keeps.

use super::{BusError, Topology, connect, headers, topology::history_queue_name};
use crate::config::BrokerConfig;
use crate::event::Envelope;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;

/// Follow the history forever, from its oldest event, calling `on_event` for each.
/// After a lost connection it goes on after the last event seen. Returns only on a
/// configuration problem (the stream cannot be declared).
pub async fn follow(cfg: BrokerConfig, mut on_event: impl FnMut(Envelope) + Send) -> BusError {
    let mut next_offset: Option<i64> = None;
    let mut attempt = 0;
    loop {
        match session(&cfg, &mut next_offset, &mut on_event).await {
            Err(e @ BusError::Declare { .. }) => return e,
            Err(e) => tracing::warn!("run history: {e}; reading again shortly"),
            Ok(()) => attempt = 0,
        }
        attempt += 1;
        let cap = Duration::from_millis(cfg.reconnect_max_delay_ms);
        tokio::time::sleep(connect::backoff(attempt, cap)).await;
    }
}

async fn session(
    cfg: &BrokerConfig,
    next_offset: &mut Option<i64>,
    on_event: &mut (impl FnMut(Envelope) + Send),
) -> Result<(), BusError> {
    let conn = connect::connect(cfg, "history reader").await?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|source| BusError::Channel {
            step: "channel.open",
            source,
        })?;
    Topology::history(cfg).declare(&channel).await?;
    // Streams need a prefetch, and acks to hand out more.
    channel
        .basic_qos(500, BasicQosOptions::default())
        .await
        .map_err(|source| BusError::Channel {
            step: "basic.qos",
            source,
        })?;
    let mut args = FieldTable::default();
    args.insert(
        "x-stream-offset".into(),
        match next_offset {
            Some(n) => AMQPValue::LongLongInt(*n),
            None => AMQPValue::LongString("first".into()),
        },
    );
    let queue = history_queue_name(&cfg.namespace);
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "history".into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await
        .map_err(|source| BusError::Channel {
            step: "basic.consume",
            source,
        })?;
    while let Some(next) = consumer.next().await {
        let delivery = next.map_err(|source| BusError::Channel {
            step: "history delivery",
            source,
        })?;
        if let Some(offset) = headers::get_u64(&delivery.properties, "x-stream-offset") {
            *next_offset = Some(offset as i64 + 1);
        }
        // Not every message on the exchange need be a Ferry event (a person may
        // publish by hand): the history skips what it cannot read.
        if let Ok(event) = Envelope::from_json(&delivery.data) {
            on_event(event);
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
    }
    Ok(())
}

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
/// configuration problem (the stream conflicts with its declaration, or no right to it).
pub async fn follow(cfg: BrokerConfig, mut on_event: impl FnMut(Envelope) + Send) -> BusError {
    follow_from(cfg, None, move |event, _| {
        on_event(event);
        std::future::ready(Ok(()))
    })
    .await
}

/// Follow the history forever from stream offset `start` (`None`: the oldest event kept),
/// handing each event with its offset to `handle`. An event `handle` fails is read again
/// after a pause, and nothing after it is handed out before it succeeds: a writer that
/// must not miss an event (the ledger) simply fails until it can write. Returns only on a
/// configuration problem (the stream conflicts with its declaration, or no right to it).
pub async fn follow_from<F, Fut>(cfg: BrokerConfig, start: Option<u64>, mut handle: F) -> BusError
where
    F: FnMut(Envelope, u64) -> Fut + Send,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let mut next_offset: Option<i64> = start.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let mut attempt = 0;
    loop {
        match session(&cfg, &mut next_offset, &mut handle).await {
            // A conflict repeats until someone acts; a stream whose node is still
            // recovering (after a restart of RabbitMQ) answers like a missing one, and
            // passes: reading goes on, never stops for good on it.
            Err(SessionEnd::Bus(e)) if !e.is_transient() => return e,
            Err(SessionEnd::Bus(e)) => tracing::warn!("run history: {e}; reading again shortly"),
            Err(SessionEnd::Handler(why)) => {
                tracing::warn!(
                    "run history: an event could not be handled ({why}); reading it again shortly"
                );
            }
            Ok(()) => attempt = 0,
        }
        attempt += 1;
        let cap = Duration::from_millis(cfg.reconnect_max_delay_ms);
        tokio::time::sleep(connect::backoff(attempt, cap)).await;
    }
}

enum SessionEnd {
    Bus(BusError),
    Handler(String),
}

impl From<BusError> for SessionEnd {
    fn from(e: BusError) -> Self {
        SessionEnd::Bus(e)
    }
}

async fn session<F, Fut>(
    cfg: &BrokerConfig,
    next_offset: &mut Option<i64>,
    handle: &mut F,
) -> Result<(), SessionEnd>
where
    F: FnMut(Envelope, u64) -> Fut + Send,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
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
        let offset = headers::get_u64(&delivery.properties, "x-stream-offset");
        // Not every message on the exchange need be a Ferry event (a person may
        // publish by hand): the history skips what it cannot read.
        if let Ok(event) = Envelope::from_json(&delivery.data) {
            // Read again from this event after a failure: the offset stays where it is.
            handle(event, offset.unwrap_or_default())
                .await
                .map_err(SessionEnd::Handler)?;
        }
        if let Some(offset) = offset {
            *next_offset = Some(offset as i64 + 1);
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
    }
    Ok(())
}

//! Opening AMQP connections: heartbeats on, and a hard timeout, because a connect to
//! an unresponsive broker can otherwise hang for good (lapin issues #437, #468).

use super::BusError;
use crate::config::BrokerConfig;
use crate::secret::redact_url;
use lapin::{Channel, Connection, ConnectionProperties};
use std::time::Duration;

/// Maps a channel-level failure to the bus error naming the AMQP step.
pub(crate) fn channel_error(step: &'static str) -> impl Fn(lapin::Error) -> BusError {
    move |source| BusError::Channel { step, source }
}

/// A connection of its own (named `what` in the broker's UI) with a confirming channel:
/// what the small broker-held registers (holds, recent requests) each use.
pub(crate) async fn confirming_channel(
    cfg: &BrokerConfig,
    what: &str,
) -> Result<(Connection, Channel), BusError> {
    let conn = connect(cfg, what).await?;
    let channel = conn
        .create_channel()
        .await
        .map_err(channel_error("channel.open"))?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .map_err(channel_error("confirm.select"))?;
    Ok((conn, channel))
}

/// The frame size Ferry asks for unless the URL sets `frame_max`. lapin buffers 32
/// frames each way per connection, so RabbitMQ's 128 KiB default costs 8 MiB of memory
/// per connection (measured with heaptrack: most of an idle updater's growth). Events
/// are a few KiB; larger bodies are split into frames, and headers are capped well
/// below this (see `headers::text`).
pub const FRAME_MAX: u32 = 16 * 1024;

/// The broker URL with `heartbeat`, `connection_timeout` and `frame_max` added unless
/// the operator set them in the URL.
pub fn effective_url(cfg: &BrokerConfig) -> String {
    let url = cfg.url.expose();
    let mut params = Vec::new();
    if !url.contains("frame_max=") {
        params.push(format!("frame_max={FRAME_MAX}"));
    }
    if !url.contains("heartbeat=") {
        params.push(format!("heartbeat={}", cfg.heartbeat_secs));
    }
    if !url.contains("connection_timeout=") {
        params.push(format!("connection_timeout={}", cfg.connect_timeout_ms));
    }
    if params.is_empty() {
        return url.clone();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", params.join("&"))
}

pub fn properties(connection_name: &str) -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name(connection_name.into())
}

pub async fn connect(cfg: &BrokerConfig, connection_name: &str) -> Result<Connection, BusError> {
    let url = effective_url(cfg);
    let after = Duration::from_millis(cfg.connect_timeout_ms);
    match tokio::time::timeout(
        after,
        Connection::connect(&url, properties(connection_name)),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(BusError::Connect {
            url: redact_url(cfg.url.expose()),
            source,
        }),
        Err(_) => Err(BusError::ConnectTimeout {
            url: redact_url(cfg.url.expose()),
            after,
        }),
    }
}

/// Exponential backoff between reconnection attempts: 100 ms, 200 ms, ... up to the cap.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn heartbeat_timeout_and_frame_max_are_added_once() {
        let mut cfg = BrokerConfig::default();
        assert_eq!(
            effective_url(&cfg),
            "amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=16384&heartbeat=10&connection_timeout=5000"
        );
        cfg.url = Secret::new("amqp://h/%2f?heartbeat=3&frame_max=65536".into());
        assert_eq!(
            effective_url(&cfg),
            "amqp://h/%2f?heartbeat=3&frame_max=65536&connection_timeout=5000"
        );
    }

    #[test]
    fn backoff_grows_then_caps() {
        let cap = Duration::from_secs(2);
        assert_eq!(backoff(0, cap), Duration::from_millis(100));
        assert_eq!(backoff(3, cap), Duration::from_millis(800));
        assert_eq!(backoff(30, cap), cap);
    }
}

//! Opening AMQP connections: heartbeats on, and a hard timeout, because a connect to
//! an unresponsive broker can otherwise hang for good (lapin issues #437, #468).

use super::BusError;
use crate::config::BrokerConfig;
use crate::config::node_address;
use crate::secret::redact_url;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties};
use std::hash::{BuildHasher, Hasher, RandomState};
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

/// A connection to the broker: to the URL's node or, on a cluster, to any node of
/// `broker.addresses`, tried in turn from a random one (so a fleet of services spreads
/// over the nodes, and one that is down only costs its attempt). The error is the last
/// node's.
pub async fn connect(cfg: &BrokerConfig, connection_name: &str) -> Result<Connection, BusError> {
    let after = Duration::from_millis(cfg.connect_timeout_ms);
    let mut last = None;
    for (uri, shown) in nodes(cfg)? {
        let attempt = Connection::connect_uri(uri, properties(connection_name));
        match tokio::time::timeout(after, attempt).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(source)) => last = Some(BusError::Connect { url: shown, source }),
            Err(_) => last = Some(BusError::ConnectTimeout { url: shown, after }),
        }
    }
    Err(last.unwrap_or_else(|| BusError::ConnectTimeout {
        url: redact_url(cfg.url.expose()),
        after,
    }))
}

/// Each node to try, as a parsed URI and as shown in errors (no password): the URL's own
/// node and `broker.addresses`, rotated to start at a random one.
fn nodes(cfg: &BrokerConfig) -> Result<Vec<(AMQPUri, String)>, BusError> {
    // Refused at start-up already; only a test's hand-made configuration gets here.
    let base = effective_url(cfg)
        .parse::<AMQPUri>()
        .map_err(|_| BusError::BadUrl {
            url: redact_url(cfg.url.expose()),
        })?;
    let mut all = vec![(base.clone(), redact_url(cfg.url.expose()))];
    for a in &cfg.addresses {
        let Ok((host, port)) = node_address(a) else {
            continue;
        };
        let mut uri = base.clone();
        uri.authority.host = host;
        uri.authority.port = port;
        all.push((uri, format!("{} (broker.addresses)", a)));
    }
    // A random start without a random-number crate: std's hasher keys are random per
    // process.
    let start = RandomState::new().build_hasher().finish() as usize % all.len();
    all.rotate_left(start);
    Ok(all)
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
    fn every_node_of_a_cluster_is_tried_with_the_url_s_user_and_parameters() {
        let mut cfg = BrokerConfig {
            url: Secret::new("amqp://ferry:pw@rabbit1:5672/prod?heartbeat=5".into()),
            addresses: vec!["rabbit2:5673".into(), "[fd00::3]:5672".into()],
            ..BrokerConfig::default()
        };
        let mut hosts: Vec<(String, u16)> = nodes(&cfg)
            .unwrap()
            .into_iter()
            .map(|(uri, shown)| {
                assert_eq!(uri.authority.userinfo.username, "ferry");
                assert_eq!(uri.authority.userinfo.password, "pw");
                assert_eq!(uri.vhost, "prod");
                assert_eq!(uri.query.heartbeat, Some(5));
                assert!(!shown.contains("pw"), "{shown}");
                (uri.authority.host, uri.authority.port)
            })
            .collect();
        hosts.sort();
        assert_eq!(
            hosts,
            [
                ("fd00::3".to_owned(), 5672),
                ("rabbit1".to_owned(), 5672),
                ("rabbit2".to_owned(), 5673)
            ]
        );
        cfg.url = Secret::new("http://not-amqp".into());
        assert!(matches!(nodes(&cfg), Err(BusError::BadUrl { .. })));
    }

    #[test]
    fn backoff_grows_then_caps() {
        let cap = Duration::from_secs(2);
        assert_eq!(backoff(0, cap), Duration::from_millis(100));
        assert_eq!(backoff(3, cap), Duration::from_millis(800));
        assert_eq!(backoff(30, cap), cap);
    }
}

//! Publishing with confirms. A publish returns only once RabbitMQ has stored the
//! message (persistent, confirmed) and routed it to at least one queue (`mandatory`);
//! anything else is an error to the caller. Every step has a deadline.
//!
//! Channels come from a deadpool pool of "lanes", each a connection (to any node of a
//! cluster, see `connect`) with one confirm-mode channel. A lane goes back to the
//! pool as soon as the message is sent, so many publishes share it while waiting for
//! their confirms; a lane that timed out, lost its connection or got a negative confirm is
//! thrown away and the next publish opens a fresh one: that is how publishers recover after
//! a broker restart or a cluster node's loss.
//!
//! A nack or a lost lane is tried again on a fresh lane while the publish's deadline lasts.
//! On RabbitMQ 3.10 a channel whose publish reached a quorum queue with no leader (during
//! an election, 0.1-0.4 s after a node dies) nacks every later publish too, so reusing it
//! would fail every event after the election is over. A second copy is possible when a
//! connection died after storing a message but before its confirm; consumers already see
//! such copies after any redelivery, and stages are idempotent by event.

use super::{BusError, connect};
use crate::config::BrokerConfig;
use crate::event::Envelope;
use crate::metrics::Metrics;
use deadpool::managed::{self, Metrics as PoolMetrics, RecycleError, RecycleResult};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// AMQP delivery mode 2: written to disk.
const PERSISTENT: u8 = 2;
/// First pause before a publish is tried again on a fresh lane; doubles up to the maximum.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(800);

pub struct Lane {
    channel: Channel,
    /// Kept so the connection lives as long as its channel; closed when the lane drops.
    _connection: Connection,
    /// Set when a publish on this lane timed out: the connection may be half-dead even
    /// though lapin still calls it connected, so the pool must not hand it out again.
    broken: Arc<AtomicBool>,
}

pub struct LaneManager {
    broker: BrokerConfig,
    name: String,
    connect_timeout: Duration,
    url_for_errors: String,
}

impl managed::Manager for LaneManager {
    type Type = Lane;
    type Error = BusError;

    async fn create(&self) -> Result<Lane, BusError> {
        let open = async {
            let connection = connect::connect(&self.broker, &self.name).await?;
            let channel =
                connection
                    .create_channel()
                    .await
                    .map_err(|source| BusError::Channel {
                        step: "channel.open",
                        source,
                    })?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|source| BusError::Channel {
                    step: "confirm.select",
                    source,
                })?;
            Ok(Lane {
                channel,
                _connection: connection,
                broken: Arc::new(AtomicBool::new(false)),
            })
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| BusError::ConnectTimeout {
                url: self.url_for_errors.clone(),
                after: self.connect_timeout,
            })?
    }

    async fn recycle(&self, lane: &mut Lane, _: &PoolMetrics) -> RecycleResult<BusError> {
        if lane.broken.load(Relaxed) || !lane.channel.status().connected() {
            return Err(RecycleError::message("publishing channel lost"));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Publisher {
    pool: managed::Pool<LaneManager>,
    exchange: String,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates no connection yet: the first publish does, so a service can start
    /// while the broker is still coming up.
    pub fn new(cfg: &BrokerConfig, service: &str, metrics: Option<Arc<Metrics>>) -> Self {
        let manager = LaneManager {
            broker: cfg.clone(),
            name: format!("{service}-publisher"),
            // Each node of a cluster may take its whole attempt before the next is tried.
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms)
                * (2 + cfg.addresses.len() as u32),
            url_for_errors: crate::secret::redact_url(cfg.url.expose()),
        };
        let pool = managed::Pool::builder(manager)
            .max_size(cfg.publisher_channels)
            .build()
            .expect("a pool without timeouts set needs no runtime");
        Self {
            pool,
            exchange: super::topology::exchange_name(&cfg.namespace),
            timeout: Duration::from_millis(cfg.publish_timeout_ms),
            metrics,
        }
    }

    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// Publish an event to Ferry's exchange under its routing key.
    pub async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        let properties = BasicProperties::default()
            .with_message_id(event.event_id.to_string().as_str().into())
            .with_correlation_id(event.run_id.to_string().as_str().into())
            .with_type(event.kind().into());
        self.publish_raw(
            &self.exchange,
            &event.routing_key(),
            &event.to_json(),
            properties,
        )
        .await
    }

    /// Publish bytes anywhere (used by the consumer for retry and parking queues,
    /// through the default exchange). Persistent, mandatory, confirmed.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let result = self
            .send_and_confirm(deadline, exchange, routing_key, body, properties)
            .await;
        if let Some(m) = &self.metrics {
            match &result {
                Ok(()) => m.published.inc(),
                Err(_) => m.publish_errors.inc(),
            };
        }
        result
    }

    /// Send on a lane until one confirms or the deadline passes: a nack or a lost lane is
    /// tried again on a fresh lane after a short pause. What trying again cannot change (an
    /// unroutable key, a refusal such as a permission) is returned at once, and so is the
    /// last failure when no time is left for another attempt.
    async fn send_and_confirm(
        &self,
        deadline: tokio::time::Instant,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let mut pause = RETRY_PAUSE;
        loop {
            let attempt = self.send_once(exchange, routing_key, body, properties.clone());
            let Ok(result) = tokio::time::timeout_at(deadline, attempt).await else {
                return Err(BusError::PublishTimeout {
                    routing_key: routing_key.to_owned(),
                    after: self.timeout,
                });
            };
            match result {
                Err(e)
                    if worth_another_lane(&e) && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::warn!(routing_key, error = %e, retry_in = ?pause,
                        "publish failed on its lane; trying again on a fresh one");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let lane = self
            .pool
            .get()
            .await
            .map_err(|e| BusError::Pool(pool_error(e)))?;
        let broken = lane.broken.clone();
        // If this future is dropped by the timeout from here on, the lane is suspect.
        let guard = MarkBrokenOnDrop(Some(broken));
        let confirm = lane
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                properties
                    .with_delivery_mode(PERSISTENT)
                    .with_content_type("application/json".into()),
            )
            .await;
        let confirm = match confirm {
            Ok(c) => c,
            Err(source) => {
                let _ = managed::Object::take(lane);
                return Err(BusError::Channel {
                    step: "basic.publish",
                    source,
                });
            }
        };
        // Sent: let other publishes use the lane while we wait for our confirm.
        drop(lane);
        let confirmation = confirm.await.map_err(|source| BusError::Channel {
            step: "publisher confirm",
            source,
        });
        match confirmation? {
            Confirmation::Ack(None) => {
                guard.disarm();
                Ok(())
            }
            Confirmation::Ack(Some(_returned)) => {
                guard.disarm();
                Err(BusError::Unroutable {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                })
            }
            // The guard, dropped armed, throws the lane away: see the module's comment.
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(BusError::Nacked {
                routing_key: routing_key.to_owned(),
            }),
        }
    }

    /// Open (or reuse) a publishing lane: true when the broker is reachable now.
    /// Used by readiness probes of services that only publish.
    pub async fn check(&self) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, self.pool.get()).await,
            Ok(Ok(_))
        )
    }

    /// Drop idle lanes (closing their connections); used at shutdown.
    pub fn close(&self) {
        self.pool.close();
    }
}

struct MarkBrokenOnDrop(Option<Arc<AtomicBool>>);

impl MarkBrokenOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for MarkBrokenOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Relaxed);
        }
    }
}

/// A negative confirm or a lane whose connection went away may well succeed on a fresh lane
/// (another node, a new leader); a channel the broker closed with a soft error (access
/// refused, no such exchange) fails the same way on every lane.
fn worth_another_lane(e: &BusError) -> bool {
    match e {
        BusError::Nacked { .. } => true,
        BusError::Channel { source, .. } => !source.is_amqp_soft_error(),
        _ => false,
    }
}

fn pool_error(e: managed::PoolError<BusError>) -> String {
    match e {
        managed::PoolError::Backend(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

//! Consuming with manual acks, retries, parking and supervision.
//!
//! A delivery is acked only once its handler's outcome is known and acted upon:
//! - `Done`: ack.
//! - `RetryLater`: a copy goes (confirmed) to the retry queue for this attempt's delay,
//!   which dead-letters it back after the delay; then ack. After `max_attempts` runs
//!   the message is parked instead.
//! - `GiveUp`: parked with its reason in headers, the run gets `<stage>.failed`, ack.
//!
//! Before any of this, a delivery whose routing key does not match the event it carries
//! (or that came through an exchange it must not come through) is parked unhandled,
//! with the reason (see `origin`).
//!
//! A message that keeps coming back without an outcome (the process dies on it, or
//! its channel is lost each time) is parked once its redelivery count reaches
//! `max_redeliveries`; the queue's `x-delivery-limit` backs that up. Nothing loops forever.
//!
//! The consumer supervises its own connection: when the broker goes away it
//! reconnects with backoff, redeclares its topology and consumes again, without
//! relying on lapin's auto-recovery (lapin issue #450).

mod delivery;

use super::topology::{StageSpec, Topology, queue_name};
use super::{BusError, Handler, Publisher, connect};
use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use futures_util::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer as LapinConsumer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::{info, warn};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
pub struct ConsumerOptions {
    pub prefetch: u16,
    pub handler_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// How a delivery ended, for observers (tests, benchmarks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub event_id: Option<Uuid>,
    pub how: SettledAs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettledAs {
    Done,
    Retried {
        attempt: u32,
        delay_ms: u64,
    },
    Parked {
        reason: String,
    },
    /// Given back to the queue unhandled (shutdown, or the retry/park publish failed).
    Requeued,
}

struct Shared<H> {
    broker: BrokerConfig,
    spec: StageSpec,
    opts: ConsumerOptions,
    handler: H,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    settled: broadcast::Sender<Settled>,
}

pub struct Consumer<H> {
    shared: Arc<Shared<H>>,
    topology: Topology,
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        broker: BrokerConfig,
        spec: StageSpec,
        opts: ConsumerOptions,
        handler: H,
        publisher: Publisher,
        metrics: Arc<Metrics>,
    ) -> Self {
        let topology = Topology::for_stage(&broker, &spec);
        let (settled, _) = broadcast::channel(4096);
        Self {
            shared: Arc::new(Shared {
                broker,
                spec,
                opts,
                handler,
                publisher,
                metrics,
                settled,
            }),
            topology,
        }
    }

    /// Observe how deliveries end.
    pub fn settled(&self) -> broadcast::Receiver<Settled> {
        self.shared.settled.subscribe()
    }

    pub fn queue(&self) -> String {
        queue_name(&self.shared.broker.namespace, self.shared.spec.service)
    }

    /// Consume until `shutdown`, reconnecting whenever the broker goes away. Returns
    /// an error only for problems a reconnect cannot fix (the topology was refused).
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), BusError> {
        let s = &self.shared;
        let cap = Duration::from_millis(s.broker.reconnect_max_delay_ms);
        let mut failures = 0u32;
        let name = format!("{}-consumer", s.spec.service);
        loop {
            if shutdown.is_triggered() {
                return Ok(());
            }
            let conn = tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                c = connect::connect(&s.broker, &name) => c,
            };
            let end = match conn {
                Ok(conn) => {
                    let end = self.session(&conn, &mut shutdown).await;
                    s.metrics.set_connected(false);
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into()))
                            .await;
                    end
                }
                Err(e) => Err(e),
            };
            match end {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Lost(why)) => {
                    warn!(
                        service = s.spec.service,
                        "lost RabbitMQ ({why}); reconnecting"
                    );
                    failures = 0;
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => {
                    warn!(service = s.spec.service, "{e}; retrying");
                    failures += 1;
                }
            }
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                _ = tokio::time::sleep(connect::backoff(failures, cap)) => {}
            }
        }
    }

    async fn session(
        &self,
        conn: &Connection,
        shutdown: &mut Shutdown,
    ) -> Result<SessionEnd, BusError> {
        let s = &self.shared;
        let channel = conn
            .create_channel()
            .await
            .map_err(|source| BusError::Channel {
                step: "channel.open",
                source,
            })?;
        if let Err(e) = self.topology.declare(&channel).await {
            // A refused declaration on a live connection is a configuration problem;
            // on a dying connection it is just the outage.
            return if conn.status().connected() {
                Err(e)
            } else {
                Ok(SessionEnd::Lost(e.to_string()))
            };
        }
        channel
            .basic_qos(s.opts.prefetch, BasicQosOptions::default())
            .await
            .map_err(|source| BusError::Channel {
                step: "basic.qos",
                source,
            })?;
        let tag = format!("{}-{}", s.spec.service, Uuid::new_v4().simple());
        let mut consumer: LapinConsumer = channel
            .basic_consume(
                self.queue().as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| BusError::Channel {
                step: "basic.consume",
                source,
            })?;
        s.metrics.set_connected(true);
        info!(service = s.spec.service, queue = %self.queue(), "consuming");

        let mut tasks = JoinSet::new();
        let mut health = tokio::time::interval(Duration::from_secs(1));
        let end = loop {
            tokio::select! {
                _ = shutdown.wait() => break SessionEnd::Shutdown,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let shared = self.shared.clone();
                        tasks.spawn(async move { delivery::process(shared, delivery).await });
                    }
                    Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                    None => break SessionEnd::Lost("consumer cancelled by the broker".into()),
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = health.tick() => {
                    if !conn.status().connected() || !channel.status().connected() {
                        break SessionEnd::Lost("connection closed".into());
                    }
                }
            }
        };

        match end {
            SessionEnd::Shutdown => self.drain(&channel, &tag, tasks).await,
            SessionEnd::Lost(_) => {
                // The broker requeues the unacked deliveries; a copy of the handler
                // still running here would only race the redelivered one.
                let left = tasks.len();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                s.metrics.requeued.inc_by(left as u64);
            }
        }
        Ok(end)
    }

    /// Stop new deliveries, let running handlers finish within the grace period, then
    /// give back whatever is left by closing the channel.
    async fn drain(&self, channel: &lapin::Channel, tag: &str, mut tasks: JoinSet<()>) {
        let s = &self.shared;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            channel.basic_cancel(tag.into(), BasicCancelOptions::default()),
        )
        .await;
        let running = tasks.len();
        if running > 0 {
            info!(
                service = s.spec.service,
                running, "waiting for running handlers before stopping"
            );
        }
        let drained = tokio::time::timeout(s.opts.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let left = tasks.len();
            warn!(
                service = s.spec.service,
                left, "grace period over: requeueing unfinished deliveries"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            s.metrics.requeued.inc_by(left as u64);
            for _ in 0..left {
                let _ = s.settled.send(Settled {
                    event_id: None,
                    how: SettledAs::Requeued,
                });
            }
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            channel.close(200, "shutting down".into()),
        )
        .await;
    }
}

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

use super::headers::{self, ATTEMPT, DELIVERY_COUNT, LAST_ERROR, ORIGINAL_ROUTING_KEY};
use super::topology::{
    StageSpec, Topology, direct_exchange_name, parked_queue_name, queue_name, retry_queue_name,
};
use super::{BusError, Publisher, connect};
use crate::config::BrokerConfig;
use crate::event::{Envelope, Event, StageFailed};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer as LapinConsumer};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span, warn};
use uuid::Uuid;

/// What a handler decided about one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished (outputs, if any, are published and confirmed).
    Done,
    /// A transient problem: run again after a delay.
    RetryLater(String),
    /// Retrying cannot help: park the message and fail the run.
    GiveUp(String),
}

/// What a handler gets besides the event.
#[derive(Clone, Debug)]
pub struct Context {
    pub publisher: Publisher,
    /// 1 for the first run of this message, 2 for the first retry, ...
    pub attempt: u32,
    /// The message may have been handled before (a consumer died before acking):
    /// check whether the work is already done before doing it again.
    pub redelivered: bool,
}

impl Context {
    /// Publish an output event; a failure becomes a retry of the whole handler
    /// (the output ids are deterministic, so a repeat is recognisable downstream).
    pub async fn publish(&self, event: &Envelope) -> Result<(), Outcome> {
        self.publisher.publish(event).await.map_err(|e| {
            Outcome::RetryLater(format!("cannot publish {}: {e}", event.routing_key()))
        })
    }

    /// Publish a handler's outputs in order; `Done` once all are confirmed.
    pub async fn publish_all(&self, events: &[Envelope]) -> Outcome {
        for event in events {
            if let Err(retry) = self.publish(event).await {
                return retry;
            }
        }
        Outcome::Done
    }
}

/// One stage's logic: takes one event, returns an outcome. Must be safe to run twice
/// for the same event (see "Idempotent handlers" in the README).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, ctx: Context, event: Envelope) -> impl Future<Output = Outcome> + Send;
}

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
                    s.metrics.broker_connected.store(false, Relaxed);
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
        s.metrics.broker_connected.store(true, Relaxed);
        info!(service = s.spec.service, queue = %self.queue(), "consuming");

        let mut tasks = JoinSet::new();
        let mut health = tokio::time::interval(Duration::from_secs(1));
        let end = loop {
            tokio::select! {
                _ = shutdown.wait() => break SessionEnd::Shutdown,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let shared = self.shared.clone();
                        tasks.spawn(async move { process(shared, delivery).await });
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
            SessionEnd::Shutdown => {
                // Stop new deliveries, let running handlers finish within the grace
                // period, then give back whatever is left by closing the channel.
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()),
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
                    s.metrics.requeued.fetch_add(left as u64, Relaxed);
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
            SessionEnd::Lost(_) => {
                // The broker requeues the unacked deliveries; a copy of the handler
                // still running here would only race the redelivered one.
                let left = tasks.len();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                s.metrics.requeued.fetch_add(left as u64, Relaxed);
            }
        }
        Ok(end)
    }
}

async fn process<H: Handler>(s: Arc<Shared<H>>, delivery: Delivery) {
    let props = &delivery.properties;
    let attempt = headers::get_u64(props, ATTEMPT).unwrap_or(1).max(1) as u32;
    let returned = headers::get_u64(props, DELIVERY_COUNT).unwrap_or(0);
    let envelope = match Envelope::from_json(&delivery.data) {
        Ok(e) => e,
        Err(err) => return park(&s, &delivery, None, attempt, err.to_string()).await,
    };
    let span = info_span!("handle", service = s.spec.service, kind = envelope.kind(),
        run_id = %envelope.run_id, event_id = %envelope.event_id, attempt);
    async {
        if let Some(reason) = super::origin::refusal(&s.broker.namespace, s.spec.service, &delivery, &envelope) {
            return park(&s, &delivery, Some(About::of(&envelope)), attempt, reason).await;
        }
        if returned >= u64::from(s.broker.max_redeliveries) {
            let reason = format!(
                "delivered {returned} times without an outcome: the handler crashes, hangs or loses its connection on this event"
            );
            return park(&s, &delivery, Some(About::of(&envelope)), attempt, reason).await;
        }
        // What the outcome handling needs, so the event itself can move into the handler.
        let about = About::of(&envelope);
        let ctx = Context { publisher: s.publisher.clone(), attempt, redelivered: delivery.redelivered || returned > 0 };
        s.metrics.in_flight.fetch_add(1, Relaxed);
        let started = Instant::now();
        let run = AssertUnwindSafe(s.handler.handle(ctx, envelope)).catch_unwind();
        let outcome = match tokio::time::timeout(s.opts.handler_timeout, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => Outcome::RetryLater(format!("handler panicked: {}", panic_message(&panic))),
            Err(_) => Outcome::RetryLater(format!("handler did not finish within {:?}", s.opts.handler_timeout)),
        };
        s.metrics.observe_handler(started.elapsed());
        s.metrics.in_flight.fetch_sub(1, Relaxed);
        match outcome {
            Outcome::Done => {
                ack(&delivery).await;
                s.metrics.handled.fetch_add(1, Relaxed);
                let _ = s.settled.send(Settled { event_id: Some(about.event_id), how: SettledAs::Done });
            }
            Outcome::RetryLater(reason) if attempt < s.broker.max_attempts => {
                s.metrics.failed.fetch_add(1, Relaxed);
                retry(&s, &delivery, about.event_id, attempt, &reason).await;
            }
            Outcome::RetryLater(reason) => {
                s.metrics.failed.fetch_add(1, Relaxed);
                let reason = format!("gave up after {attempt} attempts: {reason}");
                park(&s, &delivery, Some(about), attempt, reason).await;
            }
            Outcome::GiveUp(reason) => {
                s.metrics.failed.fetch_add(1, Relaxed);
                park(&s, &delivery, Some(about), attempt, reason).await;
            }
        }
    }
    .instrument(span)
    .await
}

async fn retry<H>(s: &Shared<H>, delivery: &Delivery, event_id: Uuid, attempt: u32, reason: &str) {
    let delays = &s.broker.retry_delays_ms;
    let delay_ms = delays[(attempt as usize - 1).min(delays.len() - 1)];
    let queue = retry_queue_name(&s.broker.namespace, s.spec.service, delay_ms);
    let direct = direct_exchange_name(&s.broker.namespace, s.spec.service);
    let props = headers::with_headers(
        &delivery.properties,
        &[
            (ATTEMPT, headers::number(u64::from(attempt) + 1)),
            (LAST_ERROR, headers::text(reason)),
            (
                ORIGINAL_ROUTING_KEY,
                headers::text(&original_routing_key(delivery)),
            ),
        ],
    );
    match s
        .publisher
        .publish_raw(&direct, &queue, &delivery.data, props)
        .await
    {
        Ok(()) => {
            warn!(
                delay_ms,
                "attempt {attempt} failed, retrying later: {reason}"
            );
            ack(delivery).await;
            s.metrics.retried.fetch_add(1, Relaxed);
            let _ = s.settled.send(Settled {
                event_id: Some(event_id),
                how: SettledAs::Retried { attempt, delay_ms },
            });
        }
        Err(e) => requeue(s, delivery, &format!("cannot schedule the retry ({e})")).await,
    }
}

/// Move the message to the parking lot with its reason, and fail the run.
async fn park<H>(
    s: &Shared<H>,
    delivery: &Delivery,
    about: Option<About>,
    attempts: u32,
    reason: String,
) {
    let queue = parked_queue_name(&s.broker.namespace, s.spec.service);
    let direct = direct_exchange_name(&s.broker.namespace, s.spec.service);
    let props = headers::with_headers(
        &delivery.properties,
        &[
            (headers::PARKED_REASON, headers::text(&reason)),
            (
                headers::PARKED_AT,
                headers::text(&chrono::Utc::now().to_rfc3339()),
            ),
            (headers::PARKED_BY, headers::text(s.spec.service)),
            (ATTEMPT, headers::number(u64::from(attempts))),
            (
                ORIGINAL_ROUTING_KEY,
                headers::text(&original_routing_key(delivery)),
            ),
        ],
    );
    if let Err(e) = s
        .publisher
        .publish_raw(&direct, &queue, &delivery.data, props)
        .await
    {
        return requeue(s, delivery, &format!("cannot park the message ({e})")).await;
    }
    error!(queue = %queue, "parked: {reason}");
    let about = about.or_else(|| About::partial(&delivery.data));
    if let Some(about) = &about {
        let failure = StageFailed {
            service: s.spec.service.to_owned(),
            reason: reason.clone(),
            attempts,
            failed_event_id: about.event_id,
            failed_kind: about.kind.clone(),
        };
        if let Some(event) = Event::failed(s.spec.stage, failure) {
            let failed = Envelope::caused_by(
                about.event_id,
                about.run_id,
                &about.project,
                event,
                about.environment.as_deref(),
            );
            match s.publisher.publish(&failed).await {
                Ok(()) => {}
                Err(e @ BusError::Unroutable { .. }) => warn!("{e}"),
                Err(e) => {
                    return requeue(
                        s,
                        delivery,
                        &format!("cannot publish {} ({e})", failed.routing_key()),
                    )
                    .await;
                }
            }
        }
    }
    ack(delivery).await;
    s.metrics.parked.fetch_add(1, Relaxed);
    let _ = s.settled.send(Settled {
        event_id: about.map(|a| a.event_id),
        how: SettledAs::Parked { reason },
    });
}

/// The run a parked message belongs to. Read leniently from the raw JSON when the
/// message is not a valid event (unknown kind, bad payload), so its run still fails.
#[derive(serde::Deserialize)]
struct About {
    event_id: Uuid,
    run_id: Uuid,
    project: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    kind: String,
}

impl About {
    fn of(e: &Envelope) -> Self {
        Self {
            event_id: e.event_id,
            run_id: e.run_id,
            project: e.project.clone(),
            environment: e.environment.clone(),
            kind: e.kind().to_owned(),
        }
    }

    fn partial(data: &[u8]) -> Option<Self> {
        serde_json::from_slice(data).ok()
    }
}

fn original_routing_key(delivery: &Delivery) -> String {
    headers::get_str(&delivery.properties, ORIGINAL_ROUTING_KEY)
        .unwrap_or_else(|| delivery.routing_key.as_str().to_owned())
}

async fn ack(delivery: &Delivery) {
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        warn!("ack failed ({e}): the broker will redeliver this message");
    }
}

async fn requeue<H>(s: &Shared<H>, delivery: &Delivery, why: &str) {
    warn!("{why}; requeueing the message");
    let _ = delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await;
    s.metrics.requeued.fetch_add(1, Relaxed);
    let _ = s.settled.send(Settled {
        event_id: None,
        how: SettledAs::Requeued,
    });
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

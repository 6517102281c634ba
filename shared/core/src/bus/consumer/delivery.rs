//! One delivery, from decoding to its ack: the handler's run and what its outcome
//! means for the message (ack, a retry queue, or the parking lot and `<stage>.failed`).

use super::{Settled, SettledAs, Shared};
use crate::bus::headers::{self, ATTEMPT, DELIVERY_COUNT, LAST_ERROR, ORIGINAL_ROUTING_KEY};
use crate::bus::topology::{direct_exchange_name, parked_queue_name, retry_queue_name};
use crate::bus::{BusError, Context, Handler, Outcome};
use crate::event::Envelope;
use crate::stage::{FailedCause, failed_event};
use futures_util::FutureExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, error, info_span, warn};
use uuid::Uuid;

pub(super) async fn process<H: Handler>(s: Arc<Shared<H>>, delivery: Delivery) {
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
        if let Some(reason) = crate::bus::origin::refusal(&s.broker.namespace, s.spec.service, &delivery, &envelope) {
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
        s.metrics.in_flight.inc();
        let started = Instant::now();
        let run = AssertUnwindSafe(s.handler.handle(ctx, envelope)).catch_unwind();
        let outcome = match tokio::time::timeout(s.opts.handler_timeout, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => Outcome::RetryLater(format!("handler panicked: {}", panic_message(&panic))),
            Err(_) => Outcome::RetryLater(format!("handler did not finish within {:?}", s.opts.handler_timeout)),
        };
        s.metrics.observe_handler(started.elapsed());
        s.metrics.in_flight.dec();
        match outcome {
            Outcome::Done => {
                ack(&delivery).await;
                s.metrics.handled.inc();
                let _ = s.settled.send(Settled { event_id: Some(about.event_id), how: SettledAs::Done });
            }
            Outcome::RetryLater(reason) if attempt < s.broker.max_attempts => {
                s.metrics.failed.inc();
                retry(&s, &delivery, about.event_id, attempt, &reason).await;
            }
            Outcome::RetryLater(reason) => {
                s.metrics.failed.inc();
                let reason = format!("gave up after {attempt} attempts: {reason}");
                park(&s, &delivery, Some(about), attempt, reason).await;
            }
            Outcome::GiveUp(reason) => {
                s.metrics.failed.inc();
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
            s.metrics.retried.inc();
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
        let cause = FailedCause::Ids {
            event_id: about.event_id,
            run_id: about.run_id,
            project: &about.project,
            environment: about.environment.as_deref(),
            kind: &about.kind,
        };
        let failed = failed_event(
            s.spec.service,
            s.spec.stage,
            cause,
            attempts,
            reason.clone(),
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
    ack(delivery).await;
    s.metrics.parked.inc();
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
    run_id: crate::event::RunId,
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
    s.metrics.requeued.inc();
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

//! Where a delivery may come from, checked before any handler sees it (defence in
//! depth behind the broker's per-user topic permissions, see `bus::users`).
//!
//! The broker only checks the routing key a user publishes with; the body's `kind` and
//! `environment` are Ferry's to check. A user allowed to publish `image.built` could
//! otherwise put `"kind": "approval.granted"` in the body, and the binding would carry
//! it to whichever stage takes `image.built`. So an event is handled only when:
//! - it came through the events exchange under exactly its own routing key
//!   (`<kind>[.<environment>]`), and was not dead-lettered there from a queue that is
//!   not an approval hold (a queue a user declares could dead-letter with any key);
//! - or it is an approval hold that expired (`hold.expired.<env>`, dead-lettered by
//!   RabbitMQ from that run's hold queue, which only the updater can declare);
//! - or it came back through the stage's own direct exchange (its retries), which
//!   only the stage's own broker user may write to.

use super::headers;
use super::hold;
use super::topology::{direct_exchange_name, exchange_name};
use crate::event::{Envelope, Event};
use lapin::message::Delivery;

/// Why a delivery must not be handled, if it must not.
pub fn refusal(
    namespace: &str,
    service: &str,
    delivery: &Delivery,
    event: &Envelope,
) -> Option<String> {
    let exchange = delivery.exchange.as_str();
    let key = delivery.routing_key.as_str();
    if exchange == direct_exchange_name(namespace, service) {
        return None;
    }
    if exchange != exchange_name(namespace) {
        return Some(format!(
            "refused: the `{}` event arrived through exchange `{exchange}`, not through `{}`; \
             only Ferry's events exchange and this stage's own may deliver to it",
            event.kind(),
            exchange_name(namespace)
        ));
    }
    let deaths = headers::death_queues(&delivery.properties);
    let hold_prefix = format!("{namespace}.hold.");
    if let Some(queue) = deaths.iter().find(|q| !q.starts_with(&hold_prefix)) {
        return Some(format!(
            "refused: the `{}` event was dead-lettered onto the events exchange from queue `{queue}`, \
             which is not an approval hold; check which broker user declared that queue",
            event.kind()
        ));
    }
    let expected = match (&event.event, event.environment.as_deref()) {
        (Event::ApprovalRequested(_), Some(env)) if !deaths.is_empty() => hold::expired_key(env),
        _ => event.routing_key(),
    };
    (key != expected).then(|| {
        format!(
            "refused: routing key `{key}` does not match the event it carries (`{expected}`): \
             a publisher allowed one key must not deliver another kind or environment"
        )
    })
}

//! Prometheus metrics of one service, on the `prometheus-client` crate and rendered in
//! the OpenMetrics text format. Every series carries `service="<name>"`; the bus
//! plumbing's counters are fields, and a service registers its own counters and
//! labelled families next to them.

use prometheus_client::encoding::text::encode;
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `/metrics` answers with: OpenMetrics text, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the handler duration histogram: a message handled in a
/// millisecond and a build of half an hour both land in a bucket of their own size.
const HANDLER_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 1800.0,
];

#[derive(Debug)]
pub struct Metrics {
    /// Behind a lock only to register a service's own metrics after start; recording
    /// never takes it (metrics are shared handles on atomics).
    registry: Mutex<Registry>,
    /// Handler returned done.
    pub handled: Counter,
    /// Handler asked to retry later; the message went to a retry queue.
    pub retried: Counter,
    /// Messages moved to the parking lot (gave up, attempts exhausted, poison).
    pub parked: Counter,
    /// Handler runs that did not end in done (retry, give-up, timeout).
    pub failed: Counter,
    /// Messages requeued at shutdown or after a lost channel.
    pub requeued: Counter,
    pub published: Counter,
    pub publish_errors: Counter,
    pub in_flight: Gauge,
    /// 1 while the consumer (or, for the hook-receiver, the publisher) is connected.
    broker_connected: Gauge,
    handler_duration: Histogram,
}

impl Metrics {
    pub fn new(service: &str) -> Arc<Self> {
        let mut registry = Registry::with_labels(std::iter::once((
            Cow::Borrowed("service"),
            Cow::Owned(service.to_owned()),
        )));
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let handled = counter(
            "ferry_messages_handled",
            "Messages whose handler finished (done).",
        );
        let retried = counter("ferry_messages_retried", "Messages sent to a retry queue.");
        let parked = counter(
            "ferry_messages_parked",
            "Messages moved to the parking lot.",
        );
        let failed = counter(
            "ferry_messages_failed",
            "Handler runs that did not end in done.",
        );
        let requeued = counter(
            "ferry_messages_requeued",
            "Messages given back to the queue unhandled.",
        );
        let published = counter("ferry_events_published", "Events published and confirmed.");
        let publish_errors = counter(
            "ferry_publish_errors",
            "Publishes that failed (unroutable, nack, timeout, no broker).",
        );
        let in_flight = Gauge::default();
        registry.register(
            "ferry_in_flight",
            "Handlers running now.",
            in_flight.clone(),
        );
        let broker_connected = Gauge::default();
        registry.register(
            "ferry_broker_connected",
            "1 while connected to RabbitMQ.",
            broker_connected.clone(),
        );
        let handler_duration = Histogram::new(HANDLER_BUCKETS);
        registry.register(
            "ferry_handler_duration_seconds",
            "Time spent in the stage handler.",
            handler_duration.clone(),
        );
        Arc::new(Self {
            registry: Mutex::new(registry),
            handled,
            retried,
            parked,
            failed,
            requeued,
            published,
            publish_errors,
            in_flight,
            broker_connected,
            handler_duration,
        })
    }

    /// A service's own counter, rendered with the others. `name` may end in `_total`
    /// (the exposition adds it to every counter).
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let c = Counter::default();
        self.register(name.strip_suffix("_total").unwrap_or(name), help, c.clone());
        c
    }

    /// A service's own metric or labelled family, rendered with the others.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    pub fn set_connected(&self, connected: bool) {
        self.broker_connected.set(i64::from(connected));
    }

    pub fn connected(&self) -> bool {
        self.broker_connected.get() == 1
    }

    pub fn observe_handler(&self, took: Duration) {
        self.handler_duration.observe(took.as_secs_f64());
    }

    /// Every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail, and every name was registered by us.
        let _ = encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_every_series_names_its_service() {
        let m = Metrics::new("builder");
        m.observe_handler(Duration::from_millis(3));
        m.observe_handler(Duration::from_secs(2));
        m.handled.inc();
        let text = m.render();
        assert!(
            text.contains(
                "ferry_handler_duration_seconds_bucket{service=\"builder\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ferry_handler_duration_seconds_bucket{service=\"builder\",le=\"5.0\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("ferry_handler_duration_seconds_count{service=\"builder\"} 2"));
        assert!(text.contains("ferry_messages_handled_total{service=\"builder\"} 1"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_service_s_own_counter_keeps_its_name() {
        let m = Metrics::new("hook-receiver");
        m.counter("ferry_hooks_accepted_total", "Hooks that started runs.")
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains("ferry_hooks_accepted_total{service=\"hook-receiver\"} 3"),
            "{text}"
        );
    }
}

//! Prometheus metrics of one service, rendered in the text exposition format.
//!
//! Hand-rolled on atomics: a handful of counters and one histogram do not justify a
//! metrics framework, and the hot path stays a few relaxed atomic adds.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the handler duration histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 1800.0,
];

#[derive(Debug)]
pub struct Metrics {
    service: String,
    /// Handler returned done.
    pub handled: AtomicU64,
    /// Handler asked to retry later; the message went to a retry queue.
    pub retried: AtomicU64,
    /// Messages moved to the parking lot (gave up, attempts exhausted, poison).
    pub parked: AtomicU64,
    /// Handler runs that did not end in done (retry, give-up, timeout).
    pub failed: AtomicU64,
    /// Messages requeued at shutdown or after a lost channel.
    pub requeued: AtomicU64,
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub in_flight: AtomicI64,
    /// Whether the consumer (or, for the hook-receiver, the publisher) is connected.
    pub broker_connected: AtomicBool,
    /// Counters a service adds for itself (name, help, value).
    extra: std::sync::Mutex<Vec<(&'static str, &'static str, Arc<AtomicU64>)>>,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_micros: AtomicU64,
    duration_count: AtomicU64,
}

impl Metrics {
    pub fn new(service: &str) -> Arc<Self> {
        Arc::new(Self {
            service: service.to_owned(),
            handled: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            parked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            broker_connected: AtomicBool::new(false),
            extra: Default::default(),
            duration_buckets: Default::default(),
            duration_sum_micros: AtomicU64::new(0),
            duration_count: AtomicU64::new(0),
        })
    }

    /// A service's own counter, rendered with the others.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<AtomicU64> {
        let value = Arc::new(AtomicU64::new(0));
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra.push((name, help, value.clone()));
        value
    }

    pub fn observe_handler(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.duration_sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
        self.duration_count.fetch_add(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let s = &self.service;
        let mut out = String::new();
        let counters = [
            (
                "ferry_messages_handled_total",
                "Messages whose handler finished (done).",
                &self.handled,
            ),
            (
                "ferry_messages_retried_total",
                "Messages sent to a retry queue.",
                &self.retried,
            ),
            (
                "ferry_messages_parked_total",
                "Messages moved to the parking lot.",
                &self.parked,
            ),
            (
                "ferry_messages_failed_total",
                "Handler runs that did not end in done.",
                &self.failed,
            ),
            (
                "ferry_messages_requeued_total",
                "Messages given back to the queue unhandled.",
                &self.requeued,
            ),
            (
                "ferry_events_published_total",
                "Events published and confirmed.",
                &self.published,
            ),
            (
                "ferry_publish_errors_total",
                "Publishes that failed (unroutable, nack, timeout, no broker).",
                &self.publish_errors,
            ),
        ];
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let extra = extra.iter().map(|(n, h, v)| (*n, *h, v.as_ref()));
        for (name, help, value) in counters.into_iter().chain(extra) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name}{{service=\"{s}\"}} {}", value.load(Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP ferry_in_flight Handlers running now.\n# TYPE ferry_in_flight gauge\nferry_in_flight{{service=\"{s}\"}} {}",
            self.in_flight.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_broker_connected 1 while connected to RabbitMQ.\n# TYPE ferry_broker_connected gauge\nferry_broker_connected{{service=\"{s}\"}} {}",
            u8::from(self.broker_connected.load(Relaxed))
        );
        let name = "ferry_handler_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time spent in the stage handler.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{service=\"{s}\",le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.duration_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{service=\"{s}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{service=\"{s}\"}} {}",
            self.duration_sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{service=\"{s}\"}} {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new("builder");
        m.observe_handler(Duration::from_millis(3));
        m.observe_handler(Duration::from_secs(2));
        let text = m.render();
        assert!(
            text.contains(
                "ferry_handler_duration_seconds_bucket{service=\"builder\",le=\"0.005\"} 1"
            )
        );
        assert!(
            text.contains("ferry_handler_duration_seconds_bucket{service=\"builder\",le=\"5\"} 2")
        );
        assert!(text.contains("ferry_handler_duration_seconds_count{service=\"builder\"} 2"));
    }
}

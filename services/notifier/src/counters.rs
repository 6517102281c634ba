//! The notifier's own metrics, served with the bus's on `/metrics` once attached.

use ferry_shared::metrics::Counter;
use ferry_shared::metrics::Metrics;
use std::sync::OnceLock;

#[derive(Default)]
pub struct Counters {
    sent: OnceLock<Counter>,
    merged: OnceLock<Counter>,
    retried: OnceLock<Counter>,
    failed: OnceLock<Counter>,
    duplicates: OnceLock<Counter>,
}

#[derive(Clone, Copy, Debug)]
pub enum Count {
    /// A platform message went out (one per request, merged or not).
    Sent,
    /// Notices that went out inside another one's message (rate limit).
    Merged,
    /// A try that failed and was tried again.
    Retried,
    /// A notification that finally failed (its event is parked).
    Failed,
    /// A repeat of an event already delivered, not sent again.
    Duplicate,
}

impl Counters {
    /// Register the counters with a service's metrics (once; later calls do nothing).
    pub fn attach(&self, m: &Metrics) {
        let _ = self.sent.set(m.counter(
            "ferry_notifications_sent_total",
            "Messages sent to chat platforms, webhooks and mail servers.",
        ));
        let _ = self.merged.set(m.counter(
            "ferry_notifications_merged_total",
            "Notifications sent inside another one's message to respect a rate limit.",
        ));
        let _ = self.retried.set(m.counter(
            "ferry_notifications_retried_total",
            "Deliveries tried again after a 5xx, 429, timeout or platform rate limit.",
        ));
        let _ = self.failed.set(m.counter(
            "ferry_notifications_failed_total",
            "Notifications that finally failed (their event is parked with the reason).",
        ));
        let _ = self.duplicates.set(m.counter(
            "ferry_notifications_duplicates_total",
            "Repeated events recognised and not sent again.",
        ));
    }

    pub fn add(&self, which: Count, n: u64) {
        let cell = match which {
            Count::Sent => &self.sent,
            Count::Merged => &self.merged,
            Count::Retried => &self.retried,
            Count::Failed => &self.failed,
            Count::Duplicate => &self.duplicates,
        };
        if let Some(c) = cell.get() {
            c.inc_by(n);
        }
    }
}

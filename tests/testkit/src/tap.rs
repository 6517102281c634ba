//! A tap: a queue bound to everything on Ferry's exchange, to see what was published.

use ferry_shared::bus::topology::{declare_exchange, exchange_name};
use ferry_shared::event::Envelope;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use std::time::Duration;

pub struct Tap {
    _conn: lapin::Connection,
    consumer: lapin::Consumer,
    /// Events already received but not yet asked for.
    seen: Vec<Envelope>,
}

impl Tap {
    /// Bound to `pattern` (e.g. `#`) on the namespace's exchange.
    pub async fn new(url: &str, namespace: &str, pattern: &str) -> anyhow::Result<Self> {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        let exchange = exchange_name(namespace);
        declare_exchange(&ch, &exchange).await?;
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        ch.queue_bind(
            q.name().clone(),
            exchange.as_str().into(),
            pattern.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let consumer = ch
            .basic_consume(
                q.name().clone(),
                "tap".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            _conn: conn,
            consumer,
            seen: Vec::new(),
        })
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Envelope> {
        if !self.seen.is_empty() {
            return Some(self.seen.remove(0));
        }
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        Envelope::from_json(&delivery.data).ok()
    }

    /// Wait for an event with this routing key; others are kept for later calls.
    pub async fn expect(
        &mut self,
        routing_key: &str,
        timeout: Duration,
    ) -> anyhow::Result<Envelope> {
        self.expect_where(routing_key, timeout, |_| true).await
    }

    /// Wait for an event of run `run_id` with this routing key.
    pub async fn expect_run(
        &mut self,
        routing_key: &str,
        run_id: impl Into<ferry_shared::event::RunId>,
        timeout: Duration,
    ) -> anyhow::Result<Envelope> {
        let run_id = run_id.into();
        self.expect_where(routing_key, timeout, |e| e.run_id == run_id)
            .await
    }

    /// Whether an event with this routing key (and matching `pred`) arrived already.
    pub fn saw(&self, routing_key: &str, pred: impl Fn(&Envelope) -> bool) -> bool {
        self.seen
            .iter()
            .any(|e| e.routing_key() == routing_key && pred(e))
    }

    async fn expect_where(
        &mut self,
        routing_key: &str,
        timeout: Duration,
        pred: impl Fn(&Envelope) -> bool,
    ) -> anyhow::Result<Envelope> {
        if let Some(i) = self
            .seen
            .iter()
            .position(|e| e.routing_key() == routing_key && pred(e))
        {
            return Ok(self.seen.remove(i));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let delivery = tokio::time::timeout(left, self.consumer.next()).await;
            let Ok(Some(Ok(delivery))) = delivery else {
                anyhow::bail!(
                    "no `{routing_key}` event within {timeout:?}; saw: {:?}",
                    self.seen.iter().map(described).collect::<Vec<_>>()
                );
            };
            let event = Envelope::from_json(&delivery.data)?;
            if event.routing_key() == routing_key && pred(&event) {
                return Ok(event);
            }
            self.seen.push(event);
        }
    }

    /// Everything that arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Envelope> {
        let mut all = std::mem::take(&mut self.seen);
        while let Some(e) = self.next(window).await {
            all.push(e);
        }
        all
    }
}

/// The routing key, with the reason of a failure (what a failed expectation needs).
fn described(e: &Envelope) -> String {
    use ferry_shared::event::Event;
    let reason = match &e.event {
        Event::BuildFailed(f)
        | Event::PushFailed(f)
        | Event::PullFailed(f)
        | Event::DeployFailed(f)
        | Event::NotifyFailed(f) => Some(&f.reason),
        Event::TestFailed(f) => Some(&f.failure.reason),
        _ => None,
    };
    match reason {
        Some(r) => format!("{} ({r})", e.routing_key()),
        None => e.routing_key(),
    }
}

//! What a handler is to the bus: it takes one event and says what became of it.
//! Stages implement [`StageHandler`](crate::stage::StageHandler) (typed input and
//! errors), which is a [`Handler`]; the bus's tests drive the consumer with plain ones.

use super::Publisher;
use crate::event::Envelope;
use crate::stage::PublishFailed;
use std::future::Future;

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
    /// Publish an output event, confirmed. On failure the handler should fail with a
    /// retry as a whole (the output ids are deterministic, so a repeat is recognisable
    /// downstream): [`PublishFailed`] is a retry for every stage.
    pub async fn emit(&self, event: &Envelope) -> Result<(), PublishFailed> {
        self.publisher
            .publish(event)
            .await
            .map_err(|source| PublishFailed {
                routing_key: event.routing_key(),
                source: Box::new(source),
            })
    }

    /// Publish a handler's outputs in order, each confirmed.
    pub async fn emit_all(&self, events: &[Envelope]) -> Result<(), PublishFailed> {
        for event in events {
            self.emit(event).await?;
        }
        Ok(())
    }

    /// [`Context::emit`] for a plain [`Handler`]: a failure is a retry.
    pub async fn publish(&self, event: &Envelope) -> Result<(), Outcome> {
        self.emit(event)
            .await
            .map_err(|e| Outcome::RetryLater(e.to_string()))
    }

    /// [`Context::emit_all`] for a plain [`Handler`]: `Done` once all are confirmed.
    pub async fn publish_all(&self, events: &[Envelope]) -> Outcome {
        match self.emit_all(events).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::RetryLater(e.to_string()),
        }
    }
}

/// What the consumer runs per event: takes one event, returns an outcome. Must be safe
/// to run twice for the same event (see "Idempotent handlers" in the README).
///
/// Every stage implements [`StageHandler`](crate::stage::StageHandler) instead, which
/// makes it a `Handler` taking only its own kinds. A plain `Handler` takes any envelope:
/// for tests and benchmarks of the bus itself.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, ctx: Context, event: Envelope) -> impl Future<Output = Outcome> + Send;
}

//! Every [`StageHandler`] is a bus [`Handler`]: the envelope is turned into the stage's
//! input, and the typed result into the consumer's outcome.

use super::{Disposition, FailedCause, Input, Received, StageError, StageHandler, failed_event};
use crate::bus::{Context, Handler, Outcome};
use crate::event::Envelope;

impl<S: StageHandler> Handler for S {
    async fn handle(&self, ctx: Context, envelope: Envelope) -> Outcome {
        let kind = envelope.kind();
        let Some(event) = Received::<S::Input>::new(envelope) else {
            return Outcome::GiveUp(format!(
                "{} does not handle `{kind}` events; check the queue bindings",
                S::Input::SERVICE
            ));
        };
        let Err(error) = self.run(&ctx, &event).await else {
            return Outcome::Done;
        };
        let reason = self.reason(&error);
        match error.disposition() {
            Disposition::Retry => Outcome::RetryLater(reason),
            Disposition::GiveUp => Outcome::GiveUp(reason),
            Disposition::Fail => {
                let stage = <S::Input as Input>::STAGE;
                tracing::warn!(environment = ?error.environment(), "{stage} failed: {reason}");
                let cause = FailedCause::Event {
                    event: &event,
                    environment: error.environment(),
                };
                let failed = failed_event(S::Input::SERVICE, stage, cause, ctx.attempt, reason);
                match ctx.emit(&failed).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::RetryLater(e.to_string()),
                }
            }
        }
    }
}

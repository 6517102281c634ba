//! `<stage>.failed`: built here only, for the consumer's parking lot and for a stage
//! that fails a run itself ([`Disposition::Fail`](super::Disposition::Fail)).

use super::StageName;
use crate::event::{Envelope, Event, RunId, StageFailed, TestFailure, TestReport};
use uuid::Uuid;

/// What a run failed on.
#[derive(Clone, Copy, Debug)]
pub enum FailedCause<'a> {
    /// A whole event: the failure follows it ([`Envelope::follow`]), carrying what
    /// every event of the run carries.
    Event {
        event: &'a Envelope,
        /// Where the failure happened, when not the event's environment.
        environment: Option<&'a str>,
    },
    /// Only the ids of a message, read leniently (it may not decode as a whole).
    Ids {
        event_id: Uuid,
        run_id: RunId,
        project: &'a str,
        environment: Option<&'a str>,
        kind: &'a str,
    },
}

/// The `<stage>.failed[.<env>]` event of `service` failing on `cause` after `attempts`
/// handler runs, saying `reason`.
pub fn failed_event(
    service: &str,
    stage: StageName,
    cause: FailedCause<'_>,
    attempts: u32,
    reason: String,
) -> Envelope {
    let (event_id, kind) = match cause {
        FailedCause::Event { event, .. } => (event.event_id, event.kind()),
        FailedCause::Ids { event_id, kind, .. } => (event_id, kind),
    };
    let failed = stage.failed(StageFailed {
        service: service.to_owned(),
        reason,
        attempts,
        failed_event_id: event_id,
        failed_kind: kind.to_owned(),
    });
    match cause {
        FailedCause::Event { event, environment } => {
            let environment = environment.or(event.environment.as_deref());
            event.follow(failed, environment)
        }
        FailedCause::Ids {
            event_id,
            run_id,
            project,
            environment,
            ..
        } => Envelope::caused_by(event_id, run_id, project, failed, environment),
    }
}

/// `test.failed.<env>` for tests that ran and failed: the failure with every check's
/// result (the updater rolls back on it; a `test.failed` without a report only fails
/// the run).
pub fn tests_failed(
    service: &str,
    event: &Envelope,
    attempts: u32,
    reason: String,
    report: TestReport,
) -> Envelope {
    let failure = StageFailed {
        service: service.to_owned(),
        reason,
        attempts,
        failed_event_id: event.event_id,
        failed_kind: event.kind().to_owned(),
    };
    let failed = Event::TestFailed(TestFailure {
        failure,
        report: Some(report),
    });
    event.follow(failed, event.environment.as_deref())
}

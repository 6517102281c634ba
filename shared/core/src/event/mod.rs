//! The event model: one envelope for every message on the bus, a typed payload per kind.
//!
//! Wire format is JSON: the envelope's fields plus `kind` and `payload`, e.g.
//! `{"event_id":..,"run_id":..,"kind":"image.built","payload":{..},..}`.
//! The routing key is `<kind>[.<environment>]`, where a kind is `<stage>.<outcome>`,
//! so a binding such as `deploy.succeeded.*` or `*.failed.#` selects what a stage needs.

mod approval;
mod build;
mod deploy;
mod deploy_terms;
mod envelope;
mod failure;
mod kinds;
mod origin;
mod run_id;
mod test_report;
#[cfg(test)]
mod tests;
mod wire;

pub use approval::{ApprovalRequested, Decision};
pub use build::{ConfigChange, ImageBuilt, ImagePushed, SourceChanged};
pub use deploy::{
    DeployRequested, DeployRolledBack, DeployStarted, DeploySucceeded, DeploySuperseded,
    HostTiming, ImagePulled, ScaleRequested, ScaleSucceeded,
};
pub use deploy_terms::{DeployReason, Endpoint, HostOutcome};
pub use envelope::{Envelope, SCHEMA_VERSION};
pub use failure::StageFailed;
pub use kinds::{ALL_KINDS, Event, EventKind};
pub use origin::{GateOverride, Starter};
pub use run_id::RunId;
pub use test_report::{CheckResult, TestFailure, TestReport};
pub use wire::EventDecodeError;

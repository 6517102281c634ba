//! A typed pipeline stage: a handler declares the events it takes once (its [`Input`]),
//! the queue bindings are derived from that declaration ([`Input::spec`], used by
//! `pipeline::stages`), and its errors say whether to retry, give up or fail the run
//! ([`StageError`]).
//!
//! ```text
//! Input (per stage, in this crate)   StageHandler (per service)
//!   SERVICE, STAGE, TAKES  ───────►    type Input, type Error
//!   from_event(&Event)                 run(&Context, &Received<Input>) -> Result<(), Error>
//! ```
//! The bus's consumer drives any [`Handler`](crate::bus::Handler); every
//! `StageHandler` is one (see `adapter`), so the consumer, its retries and its parking
//! lot are the same for typed and untyped handlers.

mod adapter;
mod failure;
mod inputs;

pub use failure::{FailedCause, failed_event, tests_failed};
pub use inputs::{BuildInput, DeployInput, NotifyInput, PullInput, PushInput, TestInput};

use crate::bus::{Context, StageSpec};
use crate::event::{Envelope, Event, EventKind, StageFailed, TestFailure};
use std::fmt;
use std::future::Future;
use std::ops::Deref;

/// A stage as routing keys name it: `build` in `build.failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageName {
    Build,
    Push,
    Pull,
    Deploy,
    Test,
    Notify,
}

impl StageName {
    pub const fn as_str(self) -> &'static str {
        match self {
            StageName::Build => "build",
            StageName::Push => "push",
            StageName::Pull => "pull",
            StageName::Deploy => "deploy",
            StageName::Test => "test",
            StageName::Notify => "notify",
        }
    }

    /// This stage's `<stage>.failed` event carrying `failure`.
    pub fn failed(self, failure: StageFailed) -> Event {
        match self {
            StageName::Build => Event::BuildFailed(failure),
            StageName::Push => Event::PushFailed(failure),
            StageName::Pull => Event::PullFailed(failure),
            StageName::Deploy => Event::DeployFailed(failure),
            StageName::Test => Event::TestFailed(TestFailure {
                failure,
                report: None,
            }),
            StageName::Notify => Event::NotifyFailed(failure),
        }
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind a stage takes, and the topic pattern that brings it to the stage's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Takes {
    pub kind: EventKind,
    /// E.g. `image.pulled.*`; several kinds may share one (`*.failed.#`).
    pub binding: &'static str,
}

/// The events one stage takes, as its own type: declared once with `stage_input!` in
/// this crate, so the topology can be derived without the services.
pub trait Input: Sized + Send + Sync + 'static {
    /// The consuming service, e.g. `builder`: names its queue.
    const SERVICE: &'static str;
    /// The stage in routing keys, e.g. `build` for `build.failed`.
    const STAGE: StageName;
    /// Every kind it takes with its binding, in declaration order.
    const TAKES: &'static [Takes];

    /// The stage's view of `event`, or `None` when the stage does not take its kind.
    fn from_event(event: &Event) -> Option<Self>;

    /// The stage's queue and bindings: each distinct binding of [`Input::TAKES`], in order.
    fn spec() -> StageSpec {
        let mut bindings: Vec<String> = Vec::new();
        for t in Self::TAKES {
            if !bindings.iter().any(|b| b == t.binding) {
                bindings.push(t.binding.to_owned());
            }
        }
        StageSpec {
            service: Self::SERVICE,
            stage: Self::STAGE,
            bindings,
        }
    }
}

/// An event a stage takes: the envelope as delivered (dereferences to it, for the
/// run, project, environment and [`Envelope::follow`]) and its payload as the
/// stage's input.
#[derive(Clone, Debug, PartialEq)]
pub struct Received<I> {
    pub envelope: Envelope,
    pub input: I,
}

impl<I: Input> Received<I> {
    /// `None` when the stage does not take the envelope's kind.
    pub fn new(envelope: Envelope) -> Option<Self> {
        let input = I::from_event(&envelope.event)?;
        Some(Self { envelope, input })
    }
}

impl<I> Deref for Received<I> {
    type Target = Envelope;
    fn deref(&self) -> &Envelope {
        &self.envelope
    }
}

/// What the bus does about a failed handler run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A transient problem: run again after the bus's delay (parked once the
    /// attempts are used up).
    Retry,
    /// The message cannot be handled (a forged or unusable event, a setting missing):
    /// park it with the reason and fail the run.
    GiveUp,
    /// The work failed for good, the message itself is fine: fail the run
    /// (`<stage>.failed`) and ack, without parking.
    Fail,
}

/// A stage's error type (a `thiserror` enum): each variant says what the bus does.
pub trait StageError: std::error::Error + Send + Sync + 'static {
    fn disposition(&self) -> Disposition;

    /// For [`Disposition::Fail`]: the environment the failure concerns when it is not
    /// the event's (a promotion that fails in the next environment).
    fn environment(&self) -> Option<&str> {
        None
    }
}

/// A stage's logic: takes its input, publishes its outputs through the context. Must
/// be safe to run twice for the same event (see "Idempotent handlers" in the README).
pub trait StageHandler: Send + Sync + 'static {
    type Input: Input;
    type Error: StageError;

    fn run(
        &self,
        ctx: &Context,
        event: &Received<Self::Input>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// How a failure is told (parking reason, `<stage>.failed`): the error's message;
    /// a stage whose errors may quote secrets scrubs them here.
    fn reason(&self, error: &Self::Error) -> String {
        error.to_string()
    }
}

/// An output could not be published: retried as a whole (output ids are
/// deterministic, so a repeat is recognisable downstream).
#[derive(Debug, thiserror::Error)]
#[error("cannot publish {routing_key}: {source}")]
pub struct PublishFailed {
    pub routing_key: String,
    /// Boxed: it is carried in every stage's error enum, which it would otherwise
    /// make several times larger.
    pub source: Box<crate::bus::BusError>,
}

/// The event names a project the configuration does not have: retrying cannot make it
/// appear.
#[derive(Debug, thiserror::Error)]
#[error("project `{0}` is not in the configuration; add [projects.{0}] or fix the trigger")]
pub struct UnknownProject(pub String);

impl StageError for PublishFailed {
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
}

impl StageError for UnknownProject {
    fn disposition(&self) -> Disposition {
        Disposition::GiveUp
    }
}

/// The configuration of the project an event belongs to.
pub fn project<'a>(
    cfg: &'a crate::config::FerryConfig,
    event: &Envelope,
) -> Result<&'a crate::config::ProjectConfig, UnknownProject> {
    cfg.projects
        .get(&event.project)
        .ok_or_else(|| UnknownProject(event.project.clone()))
}

#[cfg(test)]
mod tests;

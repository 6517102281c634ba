//! Why the updater did not deploy, and what the bus does about it: a problem of the
//! moment (a host, Rancher or the broker away) is retried, an event it cannot act on
//! is parked, and a deploy that was refused or tried and failed fails the run in the
//! environment it concerns.

use ferry_shared::stage::{Disposition, PublishFailed, StageError, UnknownProject};
use ferry_targets::{DeployError, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum UpdaterError {
    #[error(transparent)]
    Project(#[from] UnknownProject),
    /// The environment's target cannot be worked on (see `DeployError::is_transient`).
    #[error(transparent)]
    Target(#[from] DeployError),
    /// A rollback must know what it goes back from.
    #[error("cannot read what runs in {environment}: {source}")]
    Running {
        environment: String,
        /// Boxed: the error would otherwise make every result of the stage large.
        source: Box<ReadError>,
    },
    #[error("cannot record the deploy request: {0}")]
    Record(String),
    #[error("another deploy of {project} to {environment} is still running")]
    Busy {
        project: String,
        environment: String,
    },
    #[error("cannot take the deploy lock: {0}")]
    Lock(String),
    #[error("cannot hold the run for approval: {0}")]
    Hold(String),
    /// The event names an image this project may not deploy (see
    /// `image_ref::deployable`).
    #[error("not deployed: {why}")]
    Refused { environment: String, why: String },
    #[error(
        "nothing to roll back to: {environment} has no earlier deploy recorded \
         (name a revision: ferry rollback {project} --env {environment} --to <revision>)"
    )]
    NothingToRollBack {
        project: String,
        environment: String,
    },
    /// The deploy was tried and failed; the message says what is left running.
    #[error("{why}")]
    Failed { environment: String, why: String },
    #[error(transparent)]
    Publish(#[from] PublishFailed),
}

impl StageError for UpdaterError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Project(_) => Disposition::GiveUp,
            Self::Target(e) if !e.is_transient() => Disposition::GiveUp,
            Self::Target(_)
            | Self::Running { .. }
            | Self::Record(_)
            | Self::Busy { .. }
            | Self::Lock(_)
            | Self::Hold(_)
            | Self::Publish(_) => Disposition::Retry,
            Self::Refused { .. } | Self::NothingToRollBack { .. } | Self::Failed { .. } => {
                Disposition::Fail
            }
        }
    }

    /// A promotion fails in the environment it was going to, not the event's.
    fn environment(&self) -> Option<&str> {
        match self {
            Self::Refused { environment, .. }
            | Self::NothingToRollBack { environment, .. }
            | Self::Failed { environment, .. } => Some(environment),
            _ => None,
        }
    }
}

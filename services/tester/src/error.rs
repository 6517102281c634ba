//! Why a deploy could not be tested. Trouble running the tests (a Docker host away, the
//! config repo unreadable) is retried, never reported as a failed test: only the
//! application's own answers fail a run (as `test.failed`, built by the stage).

use ferry_shared::image_ref::ImageRefused;
use ferry_shared::stage::{Disposition, PublishFailed, StageError, UnknownProject};

#[derive(Debug, thiserror::Error)]
pub enum TesterError {
    #[error(transparent)]
    Project(#[from] UnknownProject),
    #[error("cannot tell where {environment} answers: {why}")]
    Locate { environment: String, why: String },
    #[error(
        "cannot read the config repo's secret files, which the test results must be \
         scrubbed of: {0}"
    )]
    Secrets(String),
    /// `image = "same"` and the event names an image that is not the project's own: a
    /// forged `deploy.succeeded` must not run a foreign image.
    #[error("test container not run: {0}")]
    Refused(ImageRefused),
    /// The test container could not be run; already scrubbed of secrets.
    #[error("{0}")]
    Container(String),
    #[error(transparent)]
    Publish(#[from] PublishFailed),
}

impl StageError for TesterError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Project(_) | Self::Refused(_) => Disposition::GiveUp,
            Self::Locate { .. } | Self::Secrets(_) | Self::Container(_) | Self::Publish(_) => {
                Disposition::Retry
            }
        }
    }
}

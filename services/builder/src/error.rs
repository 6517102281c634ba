//! Why a build failed, said so a person can act on it, and whether retrying can help.

use ferry_shared::stage::{Disposition, PublishFailed, StageError, UnknownProject};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("checkout failed: {hint} ({detail})")]
    Checkout {
        hint: String,
        detail: String,
        permanent: bool,
    },
    #[error("config repo checkout failed: {0}; check projects.<name>.config_repo")]
    ConfigCheckout(String),
    #[error(
        "config repo file `{0}` does not exist: fix projects.<name>.config_repo.files or add the file"
    )]
    MissingConfigFile(String),
    #[error("no Dockerfile: neither the config repo nor the code has `{0}`")]
    NoDockerfile(String),
    #[error("build step failed: {step}\n{tail}")]
    StepFailed { step: String, tail: String },
    #[error("the build did not finish within {0} s (build.timeout_secs)")]
    Timeout(u64),
    #[error("the Docker Engine failed: {0}")]
    Engine(String),
    #[error("cannot prepare the build: {0}")]
    Workspace(String),
    /// A revision that must not be built (not a revision, or not on its branch).
    #[error("the revision was refused: {0}")]
    Refused(String),
    #[error(transparent)]
    UnknownProject(#[from] UnknownProject),
    #[error(transparent)]
    Publish(#[from] PublishFailed),
}

impl StageError for BuildError {
    /// Whether the bus retries the build or gives up on it.
    fn disposition(&self) -> Disposition {
        let retry = match self {
            BuildError::Checkout { permanent, .. } => !permanent,
            BuildError::ConfigCheckout(_)
            | BuildError::Engine(_)
            | BuildError::Workspace(_)
            | BuildError::Timeout(_)
            | BuildError::Publish(_) => true,
            _ => false,
        };
        if retry {
            Disposition::Retry
        } else {
            Disposition::GiveUp
        }
    }
}

/// The config repo's errors keep the builder's wording and retry rules.
impl From<ferry_config_repo::ConfigRepoError> for BuildError {
    fn from(e: ferry_config_repo::ConfigRepoError) -> Self {
        use ferry_config_repo::ConfigRepoError as E;
        match e {
            E::Checkout(why) => BuildError::ConfigCheckout(why),
            E::MissingFile(file) => BuildError::MissingConfigFile(file),
            E::Workspace(why) => BuildError::Workspace(why),
            e @ E::NotOnBranch { .. } => BuildError::Refused(e.to_string()),
        }
    }
}

//! Why a deploy did not happen. [`DeployError`]: the target could not be worked on now
//! (retry, or fix the configuration); [`Failure`]: the deploy was tried and failed, and
//! a person must act.

use ferry_docker::health::Unhealthy;
use ferry_docker::{DockerError, ListError};
use ferry_rancher::ApiError;
use ferry_rancher::client::ClientError;

/// What runs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("host {host}: {source}")]
    Connect { host: String, source: DockerError },
    #[error("host {host}: {source}")]
    List { host: String, source: ListError },
    #[error("{0}")]
    Rancher(#[from] ApiError),
}

/// The target could not be worked on.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("cannot reach a host of {environment}: {source}")]
    Read {
        environment: String,
        source: Box<ReadError>,
    },
    /// Rancher was unreachable, answered 5xx, or was busy with a state change.
    #[error("{doing}: {source}")]
    Rancher { doing: String, source: ApiError },
    #[error("{0}")]
    RancherUnsettled(String),
    #[error("environment `{0}` is not configured; add [environments.{0}]")]
    NotConfigured(String),
}

impl DeployError {
    /// Worth retrying later (the host or Rancher may answer then); otherwise only a
    /// change of the configuration helps.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::NotConfigured(_))
    }
}

/// A deploy that was tried and failed; what is left running is said in the message.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(
        "the image is not on every host of {environment} and could not be pulled ({}); nothing was changed",
        .missing.join("; ")
    )]
    ImageMissing {
        environment: String,
        missing: Vec<String>,
    },
    #[error("host {host}: {why}; the previous version keeps serving")]
    Host { host: String, why: SwitchError },
    #[error(
        "Rancher refused the API keys while {doing}: check environments.<env>.rancher.access_key/secret_key ({source})"
    )]
    RancherKeys { doing: String, source: ApiError },
    #[error("{source} (while {doing})")]
    RancherCertificate { doing: String, source: ApiError },
    #[error("Rancher has no such service: check rancher.project_id and service_id ({0})")]
    RancherNoService(ApiError),
    #[error("Rancher refused {doing}: {source}")]
    RancherRefused { doing: String, source: ApiError },
    #[error("{0}")]
    RancherClient(ClientError),
    #[error("the upgrade did not complete ({why}); {}", after_cancel(.rolled_back))]
    UpgradeIncomplete { why: String, rolled_back: bool },
}

/// What a stuck upgrade left: the previous image, or a service to look at.
fn after_cancel(rolled_back: &bool) -> &'static str {
    if *rolled_back {
        "rolled back to the previous image"
    } else {
        "the rollback did not complete either: check the service in Rancher"
    }
}

/// Why a host could not be switched to the new container.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("cannot create the container (is the image on the host?): {0}")]
    Create(bollard::errors::Error),
    #[error("the new container did not start: {0}")]
    Start(bollard::errors::Error),
    #[error("the new container {0}")]
    Verify(#[from] VerifyError),
}

/// Why a container is not fit to serve. Completes "the new container ...".
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("is unhealthy: {0}")]
    Unhealthy(#[from] Unhealthy),
    #[error("did not stay up on port {0} (is something else listening there?)")]
    DidNotStayUp(u16),
}

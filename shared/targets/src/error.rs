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
    /// The launch file's config repo could not be checked out (it may be back later).
    #[error("{0}")]
    ConfigRepo(String),
    /// The deploy lock went with its broker connection: the deploy stopped before its
    /// next switch and is tried again, by whoever holds the lock next.
    #[error(
        "the deploy lock of {environment} was lost (its broker connection closed or stopped answering); stopped before the next switch, the deploy is retried by the next holder of the lock"
    )]
    LockLost { environment: String },
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
    #[error(
        "{service} does not exist in Rancher yet, and its first deploy cannot create it: {why}; add {file} (Rancher's launchConfig and scale) to the project's folder in its config repo, or create the service in Rancher"
    )]
    NoLaunchFile {
        service: String,
        file: String,
        why: String,
    },
    #[error("{file} in the config repo (commit {commit}) {source}; nothing was created")]
    LaunchFile {
        file: String,
        commit: String,
        source: ferry_rancher::LaunchError,
    },
    #[error(
        "{service} was created but did not come up: {why}; look at it in Rancher (the next deploy upgrades it)"
    )]
    RancherCreated { service: String, why: String },
    #[error(
        "{service} does not exist in Rancher yet: deploy the project first (its first deploy creates it)"
    )]
    RancherNotCreated { service: String },
    #[error("scaling {target} to {to} did not complete ({why}); check it with `ferry status`")]
    ScaleIncomplete {
        target: String,
        to: u32,
        why: String,
    },
    #[error(
        "{environment} has ports for {max} replica(s) per host, not {to}: add blue/green port pairs to the project's container.ports (or the environment's ports)"
    )]
    NoPortsFor {
        environment: String,
        max: u32,
        to: u32,
    },
    #[error("nothing of the project runs in {0} to scale: deploy it first")]
    NothingToScale(String),
    #[error("Rancher refused {doing}: {source}")]
    RancherRefused { doing: String, source: ApiError },
    #[error("{0}")]
    RancherClient(ClientError),
    #[error(
        "the canary was stopped at {percent} % of the traffic: {why}; all traffic is back on the previous release, which keeps serving"
    )]
    Canary { percent: u8, why: String },
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
    #[error("the proxy {0}")]
    Proxy(#[from] crate::docker::proxy::ProxyError),
}

/// Why a container is not fit to serve. Completes "the new container ...".
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("is unhealthy: {0}")]
    Unhealthy(#[from] Unhealthy),
    #[error("did not stay up on port {0} (is something else listening there?)")]
    DidNotStayUp(u16),
}

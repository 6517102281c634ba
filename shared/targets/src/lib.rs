//! Deployment targets behind one trait: what an environment runs now, deploying a run
//! into it, and rolling it back, for plain Docker hosts (a blue/green switch per host)
//! and Rancher 1.6 services. "What runs in environment X" is worked out here only: the
//! updater, the tester and `ferry status` ask this crate.

pub mod docker;
mod environment;
mod error;
pub mod locate;
pub mod rancher;
pub mod status;

pub use environment::Environment;
pub use error::{DeployError, Failure, ReadError};
pub use ferry_docker::Running;

use ferry_shared::bus::Lock;
use ferry_shared::event::HostTiming;
use ferry_shared::order::RunOrder;
use std::future::Future;
use uuid::Uuid;

/// One run's deploy into an environment.
#[derive(Clone, Copy, Debug)]
pub struct Deploy<'a> {
    /// By digest (`repo[:tag]@sha256:...`).
    pub image: &'a str,
    pub revision: &'a str,
    pub run_id: Uuid,
    /// The run's place; none for a run started by an older Ferry.
    pub order: Option<&'a RunOrder>,
    /// An operator's explicit deploy: its place becomes the environment's mark (see
    /// `ferry_shared::order::next_mark`).
    pub resets_mark: bool,
    /// The deploy continues after an operator's approval: a canary held at a step for
    /// it goes on to the next step.
    pub approved: bool,
    /// The environment's deploy lock, asked before each host's (or replica's) switch
    /// and each change of a canary's split: a deploy that lost it stops there
    /// ([`DeployError::LockLost`]), as another updater may hold it now.
    pub fence: Option<&'a Lock>,
}

/// How a deploy ended, when the target could be worked on.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        /// The image (and revision) that ran before, if any.
        previous_image: Option<String>,
        previous_revision: Option<String>,
        /// Per host and replica, with where the run answers there.
        hosts: Vec<HostTiming>,
    },
    /// Not deployed, and retrying cannot help: a person must act (the reason says how).
    Failed(Failure),
    /// A newer run is what runs now.
    Superseded { running: Running },
    /// A canary passed a step that waits for an operator: the new release takes
    /// `percent` of the traffic until `ferry approve` (the deploy again, `approved`) or
    /// a rejection ([`DockerTarget::abandon`](docker::DockerTarget::abandon)).
    Held { percent: u8 },
}

/// How `ferry scale` ended, when the target could be worked on.
#[derive(Debug)]
pub enum ScaleOutcome {
    /// Runs `to` instances (on Docker hosts: per host) where it ran `from`.
    Scaled { from: u32, to: u32 },
    /// Not scaled (or not completely), and retrying cannot help: the reason says
    /// what runs and what to do.
    Failed(Failure),
}

/// Where runs are deployed: one environment's Docker hosts, or its Rancher service.
pub trait Target {
    /// What the environment runs now: the first host's container (the newest, if an
    /// interrupted switch left two), or the Rancher service's launchConfig.
    fn running(&self) -> impl Future<Output = Result<Option<Running>, ReadError>> + Send;

    /// Deploy a run forward: a run behind the one running ends superseded.
    fn deploy(&self, d: &Deploy<'_>) -> impl Future<Output = Result<Outcome, DeployError>> + Send;

    /// Go back to an earlier run's image (a rollback, or a revision rebuilt for one),
    /// even if it is behind the one running.
    fn roll_back(
        &self,
        d: &Deploy<'_>,
    ) -> impl Future<Output = Result<Outcome, DeployError>> + Send;

    /// Run `to` instances of what runs now (Rancher: the service's scale; Docker
    /// hosts: replicas on each host).
    fn scale(&self, to: u32) -> impl Future<Output = Result<ScaleOutcome, DeployError>> + Send;
}

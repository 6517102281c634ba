//! Where a deployed run answers: the environment's `base_url`, with `{host}` and
//! `{port}` taken from the run's own container. The `docker` target moves between two
//! ports on every deploy, and a newer run may have replaced this one since: "whatever
//! runs there now" could be another revision.

use crate::docker::DockerTarget;
use crate::{Environment, ReadError};
use ferry_shared::config::{EnvironmentConfig, Target as EnvTarget};
use ferry_shared::event::Endpoint;
use uuid::Uuid;

/// The URL of a `docker` environment without a `base_url`.
const DEFAULT_DOCKER_URL: &str = "http://{host}:{port}";

/// The environment's base URL, maybe with `{host}` and `{port}` still to fill; none
/// when it has no URL (a Rancher service without `base_url`).
pub fn url_template(env_cfg: &EnvironmentConfig) -> Option<String> {
    match (&env_cfg.base_url, &env_cfg.target) {
        (Some(t), _) => Some(t.clone()),
        (None, EnvTarget::Docker) => Some(DEFAULT_DOCKER_URL.to_owned()),
        (None, EnvTarget::Rancher(_)) => None,
    }
}

/// Whether `template` depends on where the run's container is.
pub fn needs_endpoint(template: &str) -> bool {
    template.contains("{host}") || template.contains("{port}")
}

/// `template` with `{host}` and `{port}` of `endpoint`.
pub fn fill(template: &str, endpoint: &Endpoint) -> String {
    template
        .replace("{host}", &endpoint.address)
        .replace("{port}", &endpoint.port.to_string())
}

/// Where a run is, on the environment's first host.
#[derive(Debug, PartialEq)]
pub enum Whereabouts {
    /// The run's own container (or one running the very image it deployed) serves here.
    Here(Endpoint),
    /// A newer run's container serves the environment now.
    Replaced { image: String, run_id: Uuid },
    /// Nothing of the project runs there any more; why, for a person.
    Gone(String),
}

impl Environment<'_> {
    /// Where run `run_id`, which deployed `image`, answers now (see [`Whereabouts`]);
    /// `None` for a target without Ferry's own containers (Rancher).
    pub async fn find_run(
        &self,
        run_id: Uuid,
        image: &str,
    ) -> Option<Result<Whereabouts, FindError>> {
        match self {
            Self::Docker(t) => Some(t.find_run(run_id, image).await),
            Self::Rancher(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("environments.{0} has no hosts to find {{host}}/{{port}} on; list its hosts")]
    NoHosts(String),
    #[error("{0}")]
    Read(#[from] ReadError),
}

impl DockerTarget<'_> {
    async fn find_run(&self, run_id: Uuid, image: &str) -> Result<Whereabouts, FindError> {
        let Some(host) = self.hosts().first() else {
            return Err(FindError::NoHosts(self.environment.to_owned()));
        };
        let running = self.running_per_host_of(host).await?;
        // The run's own container; else one running the very digest the run deployed (a
        // deploy that found its image already running leaves that container in place).
        let ours = running
            .iter()
            .filter(|r| r.run_id == Some(run_id))
            .min_by_key(|r| r.replica)
            .or_else(|| running.iter().find(|r| r.image == image));
        Ok(match (ours, running.first()) {
            (Some(r), _) => Whereabouts::Here(Endpoint {
                address: host.config.address(),
                port: r.port,
            }),
            (None, Some(newest)) => Whereabouts::Replaced {
                image: newest.image.clone(),
                run_id: newest.run_id.unwrap_or_default(),
            },
            (None, None) => Whereabouts::Gone(format!(
                "no container of {} runs in {} on {} any more: it stopped after \
                 its deploy (see `docker logs` of the stopped container there)",
                self.project, self.environment, host.config.url
            )),
        })
    }
}

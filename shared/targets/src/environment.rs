//! Which target an environment deploys to, read from its configuration. The one place
//! here that reads `environments.<name>` (its `target`, `hosts`, `ports`, `rancher`).

use crate::docker::{DockerTarget, Host};
use crate::rancher::RancherTarget;
use crate::{Deploy, DeployError, Outcome, ReadError, Running, ScaleOutcome, Target};
use ferry_shared::config::{EnvironmentConfig, FerryConfig, Target as EnvTarget};

/// An environment's target.
pub enum Environment<'a> {
    /// Boxed: it carries the project's container settings.
    Docker(Box<DockerTarget<'a>>),
    Rancher(RancherTarget<'a>),
}

impl<'a> Environment<'a> {
    /// The target of `project`'s environment `env`.
    pub fn of(cfg: &'a FerryConfig, project: &'a str, env: &'a str) -> Result<Self, DeployError> {
        let Some(env_cfg) = cfg.environments.get(env) else {
            return Err(DeployError::NotConfigured(env.to_owned()));
        };
        if let EnvTarget::Rancher(config) = &env_cfg.target {
            return Ok(Self::Rancher(RancherTarget {
                cfg,
                project,
                environment: env,
                config,
            }));
        }
        let mut container = cfg
            .projects
            .get(project)
            .map(|p| p.container.clone())
            .unwrap_or_default();
        if let Some(ports) = &env_cfg.ports {
            container.ports.clone_from(ports);
        }
        Ok(Self::Docker(Box::new(DockerTarget {
            cfg,
            project,
            environment: env,
            hosts: docker_hosts(cfg, env_cfg),
            container,
        })))
    }
}

/// The environment's configured Docker hosts, in its order (names not in
/// `[docker_hosts]` are refused by the configuration's checks).
fn docker_hosts(cfg: &FerryConfig, env_cfg: &EnvironmentConfig) -> Vec<Host> {
    env_cfg
        .hosts
        .iter()
        .filter_map(|h| {
            cfg.docker_hosts.get(h).map(|d| Host {
                name: h.clone(),
                config: d.clone(),
            })
        })
        .collect()
}

impl Target for Environment<'_> {
    async fn running(&self) -> Result<Option<Running>, ReadError> {
        match self {
            Self::Docker(t) => t.running().await,
            Self::Rancher(t) => t.running().await,
        }
    }

    async fn deploy(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        match self {
            Self::Docker(t) => t.deploy(d).await,
            Self::Rancher(t) => t.deploy(d).await,
        }
    }

    async fn roll_back(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        match self {
            Self::Docker(t) => t.roll_back(d).await,
            Self::Rancher(t) => t.roll_back(d).await,
        }
    }

    async fn scale(&self, to: u32) -> Result<ScaleOutcome, DeployError> {
        match self {
            Self::Docker(t) => t.scale(to).await,
            Self::Rancher(t) => t.scale(to).await,
        }
    }
}

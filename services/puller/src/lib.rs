//! puller: consumes `image.pushed`, pre-pulls `image@digest` onto every host of the
//! project's environments in parallel (as the SaltStack step did: N hosts cost the
//! time of one pull), and publishes `image.pulled.<env>` per environment once its hosts
//! are ready, with per-host timings.
//!
//! Policy `pull.policy = "all"` (default): an environment whose hosts did not all get
//! the image is not ready; the handler retries (hosts that have it are skipped) and
//! finally fails the run with `pull.failed` naming each failed host and its cause.

use ferry_docker::pull;
use ferry_shared::bus::{Context, StageSpec};
use ferry_shared::config::{DockerHostConfig, FerryConfig, HostFiles, PullPolicy};
use ferry_shared::event::{Envelope, Event, ImagePulled, ImagePushed};
use ferry_shared::image_ref::ImageRefused;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{
    Disposition, Input, PublishFailed, PullInput, Received, StageError, StageHandler,
    UnknownProject,
};
use std::sync::Arc;

pub const SERVICE: &str = PullInput::SERVICE;

pub fn spec() -> StageSpec {
    PullInput::spec()
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9604,
    prefetch: 4,
    handler_timeout_secs: 900,
    shutdown_grace_secs: 25,
    host_files: HostFiles::Check,
};

/// Why an image is not (yet) on an environment's hosts.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Project(#[from] UnknownProject),
    /// The event names an image this project may not pull (see `image_ref::deployable`).
    #[error(transparent)]
    Refused(#[from] ImageRefused),
    #[error("`{0}` has no sha256 digest: deploys go by digest only")]
    NoDigest(String),
    #[error("environment `{0}` is not configured")]
    UnknownEnvironment(String),
    #[error("{environment}: {why}")]
    Discover { environment: String, why: String },
    /// Hosts of one environment lack the image (per `pull.policy`).
    #[error("{environment}: {}", failed.join("; "))]
    NotReady {
        environment: String,
        failed: Vec<String>,
    },
    /// Environments not ready yet, each with its cause: the whole event is retried
    /// (hosts that have the image are skipped).
    #[error("image {image} is missing on: {}", failures.join(" | "))]
    Missing {
        image: String,
        failures: Vec<String>,
    },
    #[error(transparent)]
    Publish(#[from] PublishFailed),
}

impl StageError for PullError {
    fn disposition(&self) -> Disposition {
        match self {
            PullError::Project(_)
            | PullError::Refused(_)
            | PullError::NoDigest(_)
            | PullError::UnknownEnvironment(_) => Disposition::GiveUp,
            PullError::Discover { .. }
            | PullError::NotReady { .. }
            | PullError::Missing { .. }
            | PullError::Publish(_) => Disposition::Retry,
        }
    }
}

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }
}

/// `repo:tag@sha256:...` → `repo@sha256:...`: pull by digest, never by a tag that moves.
pub fn by_digest(image: &str) -> Option<String> {
    let (name, digest) = image.split_once('@')?;
    let repo = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    digest
        .starts_with("sha256:")
        .then(|| format!("{repo}@{digest}"))
}

impl StageHandler for Stage {
    type Input = PullInput;
    type Error = PullError;

    async fn run(&self, ctx: &Context, event: &Received<PullInput>) -> Result<(), PullError> {
        let PullInput::ImagePushed(pushed) = &event.input;
        let project = ferry_shared::stage::project(&self.cfg, event)?;
        // The event is not trusted to name the project's image: a broker user that can
        // publish `image.pushed` must not get another image onto the hosts.
        if let Err(refused) =
            ferry_shared::image_ref::deployable(&self.cfg, &event.project, &pushed.image)
        {
            tracing::warn!("image refused: {refused}");
            return Err(refused.into());
        }
        let Some(image) = by_digest(&pushed.image) else {
            return Err(PullError::NoDigest(pushed.image.clone()));
        };
        // Every environment at once, each published the moment its hosts are ready:
        // staging does not wait for production's slowest host.
        let results = futures_util::future::join_all(
            project
                .environments
                .iter()
                .map(|env| self.prepare(ctx, event, pushed, &image, env)),
        )
        .await;
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok(()) => {}
                Err(e) if e.disposition() == Disposition::GiveUp => return Err(e),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(PullError::Missing { image, failures })
        }
    }
}

impl Stage {
    /// Pull onto one environment's hosts and publish `image.pulled.<env>` when they are
    /// ready (per `pull.policy`); otherwise why not.
    async fn prepare(
        &self,
        ctx: &Context,
        event: &Envelope,
        pushed: &ImagePushed,
        image: &str,
        env_name: &str,
    ) -> Result<(), PullError> {
        let Some(env) = self.cfg.environments.get(env_name) else {
            return Err(PullError::UnknownEnvironment(env_name.to_owned()));
        };
        let mut hosts: Vec<(String, DockerHostConfig)> = env
            .hosts
            .iter()
            .filter_map(|h| self.cfg.docker_hosts.get(h).map(|d| (h.clone(), d.clone())))
            .collect();
        if let Some(r) = env.rancher().filter(|r| r.discover_hosts) {
            let found =
                ferry_rancher::rancher_hosts(r)
                    .await
                    .map_err(|why| PullError::Discover {
                        environment: env_name.to_owned(),
                        why: why.to_string(),
                    })?;
            hosts.extend(found);
        }
        let results = pull::pull_onto(&self.cfg, image, &hosts).await;
        let failed: Vec<String> = results.iter().filter_map(|r| r.error.clone()).collect();
        let ok = match self.cfg.pull.policy {
            PullPolicy::Any => failed.len() < results.len() || results.is_empty(),
            PullPolicy::All => failed.is_empty(),
        };
        for r in &results {
            tracing::info!(environment = %env_name, host = %r.timing.host, millis = r.timing.millis, "{}", r.timing.outcome);
        }
        if !ok {
            return Err(PullError::NotReady {
                environment: env_name.to_owned(),
                failed,
            });
        }
        let pulled = ImagePulled {
            revision: pushed.revision.clone(),
            image: pushed.image.clone(),
            hosts: results.into_iter().map(|r| r.timing).collect(),
        };
        Ok(ctx
            .emit(&event.follow(Event::ImagePulled(pulled), Some(env_name)))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_go_by_digest() {
        let d = "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8";
        assert_eq!(
            by_digest(&format!("127.0.0.1:5000/shop/web:5@{d}")),
            Some(format!("127.0.0.1:5000/shop/web@{d}"))
        );
        assert_eq!(
            by_digest("registry/x@sha256:ab"),
            Some("registry/x@sha256:ab".into())
        );
        assert_eq!(by_digest("registry/x:5"), None);
    }
}

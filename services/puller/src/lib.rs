//! puller: consumes `image.pushed`, pre-pulls `image@digest` onto every host of the
//! project's environments in parallel (as the SaltStack step did: N hosts cost the
//! time of one pull), and publishes `image.pulled.<env>` per environment once its hosts
//! are ready, with per-host timings.
//!
//! Policy `pull.policy = "all"` (default): an environment whose hosts did not all get
//! the image is not ready; the handler retries (hosts that have it are skipped) and
//! finally fails the run with `pull.failed` naming each failed host and its cause.

use ferry_docker::pull;
use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::{DockerHostConfig, FerryConfig, PullPolicy};
use ferry_shared::event::{Envelope, Event, ImagePulled, ImagePushed};
use ferry_shared::service::{ServiceDefaults, configured_project, not_handled};
use std::sync::Arc;

pub const SERVICE: &str = "puller";

pub fn spec() -> StageSpec {
    ferry_shared::pipeline::stage(SERVICE)
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9604,
    prefetch: 4,
    handler_timeout_secs: 900,
    shutdown_grace_secs: 25,
};

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

impl Handler for Stage {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        let Event::ImagePushed(pushed) = &event.event else {
            return not_handled(SERVICE, &event);
        };
        let project = match configured_project(&self.cfg, &event) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        // The event is not trusted to name the project's image: a broker user that can
        // publish `image.pushed` must not get another image onto the hosts.
        if let Err(refused) =
            ferry_shared::image_ref::deployable(&self.cfg, &event.project, &pushed.image)
        {
            tracing::warn!("image refused: {refused}");
            return Outcome::GiveUp(refused.to_string());
        }
        let Some(image) = by_digest(&pushed.image) else {
            return Outcome::GiveUp(format!(
                "`{}` has no sha256 digest: deploys go by digest only",
                pushed.image
            ));
        };
        // Every environment at once, each published the moment its hosts are ready:
        // staging does not wait for production's slowest host.
        let results = futures_util::future::join_all(
            project
                .environments
                .iter()
                .map(|env| self.prepare(&ctx, &event, pushed, &image, env)),
        )
        .await;
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok(()) => {}
                Err(Outcome::GiveUp(why)) => return Outcome::GiveUp(why),
                Err(Outcome::RetryLater(why)) => failures.push(why),
                Err(other) => return other,
            }
        }
        if failures.is_empty() {
            Outcome::Done
        } else {
            Outcome::RetryLater(format!(
                "image {image} is missing on: {}",
                failures.join(" | ")
            ))
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
    ) -> Result<(), Outcome> {
        let Some(env) = self.cfg.environments.get(env_name) else {
            return Err(Outcome::GiveUp(format!(
                "environment `{env_name}` is not configured"
            )));
        };
        let mut hosts: Vec<(String, DockerHostConfig)> = env
            .hosts
            .iter()
            .filter_map(|h| self.cfg.docker_hosts.get(h).map(|d| (h.clone(), d.clone())))
            .collect();
        if let Some(r) = env.rancher().filter(|r| r.discover_hosts) {
            let found = ferry_rancher::rancher_hosts(r)
                .await
                .map_err(|why| Outcome::RetryLater(format!("{env_name}: {why}")))?;
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
            return Err(Outcome::RetryLater(format!(
                "{env_name}: {}",
                failed.join("; ")
            )));
        }
        let pulled = ImagePulled {
            revision: pushed.revision.clone(),
            image: pushed.image.clone(),
            hosts: results.into_iter().map(|r| r.timing).collect(),
        };
        ctx.publish(&event.follow(Event::ImagePulled(pulled), Some(env_name)))
            .await
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

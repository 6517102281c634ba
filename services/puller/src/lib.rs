//! puller: consumes `image.pushed`, pre-pulls `image@digest` onto every host of the
//! project's environments in parallel (as the SaltStack step did: N hosts cost the
//! time of one pull), and publishes `image.pulled.<env>` per environment once its hosts
//! are ready, with per-host timings.
//!
//! Policy `pull.policy = "all"` (default): an environment whose hosts did not all get
//! the image is not ready; the handler retries (hosts that have it are skipped) and
//! finally fails the run with `pull.failed` naming each failed host and its cause.

pub mod discover;
pub mod pull;

use ferry_shared::bus::{Context, Handler, Outcome, StageSpec};
use ferry_shared::config::{DockerHostConfig, FerryConfig};
use ferry_shared::event::{Envelope, Event, ImagePulled};
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
        let Some(image) = by_digest(&pushed.image) else {
            return Outcome::GiveUp(format!(
                "`{}` has no sha256 digest: deploys go by digest only",
                pushed.image
            ));
        };
        let mut failures = Vec::new();
        let mut ready = Vec::new();
        for env_name in &project.environments {
            let Some(env) = self.cfg.environments.get(env_name) else {
                return Outcome::GiveUp(format!("environment `{env_name}` is not configured"));
            };
            let mut hosts: Vec<(String, DockerHostConfig)> = env
                .hosts
                .iter()
                .filter_map(|h| self.cfg.docker_hosts.get(h).map(|d| (h.clone(), d.clone())))
                .collect();
            if let Some(r) = env.rancher.as_ref().filter(|r| r.discover_hosts) {
                match discover::rancher_hosts(r).await {
                    Ok(found) => hosts.extend(found),
                    Err(why) => return Outcome::RetryLater(format!("{env_name}: {why}")),
                }
            }
            let results = pull::pull_onto(&self.cfg, &image, &hosts).await;
            let failed: Vec<String> = results.iter().filter_map(|r| r.error.clone()).collect();
            let ok = match self.cfg.pull.policy.as_str() {
                "any" => failed.len() < results.len() || results.is_empty(),
                _ => failed.is_empty(),
            };
            for r in &results {
                tracing::info!(environment = %env_name, host = %r.timing.host, millis = r.timing.millis, "{}", r.timing.outcome);
            }
            if ok {
                let pulled = ImagePulled {
                    revision: pushed.revision.clone(),
                    image: pushed.image.clone(),
                    hosts: results.into_iter().map(|r| r.timing).collect(),
                };
                ready.push(event.follow(Event::ImagePulled(pulled), Some(env_name)));
            } else {
                failures.push(format!("{env_name}: {}", failed.join("; ")));
            }
        }
        // Environments that are ready go on even if another one is not.
        if let Outcome::RetryLater(why) = ctx.publish_all(&ready).await {
            return Outcome::RetryLater(why);
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

//! `ferry scale` on Docker hosts: each host runs `to` replicas of what it runs now.
//! A new replica takes its own blue/green pair of ports and must pass the health check
//! before it counts; replicas past `to` are stopped gracefully (SIGTERM, then
//! `stop_timeout_secs`) and removed, the highest first, with what was retired behind
//! them. Later deploys keep each host's number of replicas (see `replicas_on`).

use super::proxy::{Proxy, backend, drain, server};
use super::retire::force;
use super::{DockerTarget, Spec, switch};
use crate::{Failure, ReadError, Running, ScaleOutcome};
use bollard::query_parameters::StopContainerOptionsBuilder;
use ferry_docker::Docker;
use uuid::Uuid;

impl DockerTarget<'_> {
    pub(super) async fn scale_to(&self, to: u32) -> Result<ScaleOutcome, ReadError> {
        let max = self.max_replicas();
        if to > max {
            return Ok(ScaleOutcome::Failed(Failure::NoPortsFor {
                environment: self.environment.to_owned(),
                max,
                to,
            }));
        }
        // Every host is read before any is changed: one that cannot be reached stops
        // the scale before it starts.
        let mut hosts = Vec::new();
        for host in &self.hosts {
            let (docker, running) = self.running_on(host).await?;
            hosts.push((host, docker, running));
        }
        let Some(like) = hosts.iter().find_map(|(_, _, r)| first(r)).cloned() else {
            return Ok(ScaleOutcome::Failed(Failure::NothingToScale(
                self.environment.to_owned(),
            )));
        };
        let from = hosts
            .iter()
            .filter_map(|(_, _, r)| r.iter().map(|c| c.replica + 1).max())
            .max()
            .unwrap_or(0);
        for (host, docker, running) in &hosts {
            // A host that runs an older release than the others (a deploy in between
            // failed there) grows with its own.
            let here = first(running).unwrap_or(&like);
            let spec = |replica| Spec {
                project: self.project,
                environment: self.environment,
                image: &here.image,
                revision: &here.revision,
                run_id: here.run_id.unwrap_or_else(Uuid::now_v7),
                order: None,
                resets_mark: false,
                container: &self.container,
                replica,
                replicas: to,
                proxied: self.proxied(),
                fence: None,
            };
            for replica in (0..to).filter(|r| !running.iter().any(|c| c.replica == *r)) {
                let t = spec(replica);
                if let Err(why) = switch::add_replica(docker, host, &t, here).await {
                    return Ok(ScaleOutcome::Failed(Failure::Host {
                        host: t.host_label(&host.name),
                        why,
                    }));
                }
                tracing::info!(host = %host.name, replica, "replica added");
            }
            let mut extra: Vec<&Running> = running.iter().filter(|c| c.replica >= to).collect();
            extra.sort_by_key(|c| std::cmp::Reverse(c.replica));
            for c in extra {
                let t = spec(c.replica);
                if let Some(cfg) = t.proxied {
                    drain_out(docker, &host.name, cfg, &t, c).await;
                }
                remove(docker, &t, c).await;
                tracing::info!(host = %host.name, replica = c.replica, "replica removed");
            }
        }
        Ok(ScaleOutcome::Scaled { from, to })
    }
}

/// The host's first replica, else any.
fn first(running: &[Running]) -> Option<&Running> {
    running
        .iter()
        .find(|r| r.replica == 0)
        .or_else(|| running.first())
}

/// Take replica `c` out of the proxy once its requests in flight are done.
async fn drain_out(
    docker: &Docker,
    host: &str,
    cfg: &ferry_shared::config::FerryConfig,
    t: &Spec<'_>,
    c: &Running,
) {
    let proxy = Proxy { docker, cfg, host };
    let b = backend(t.project, t.environment);
    let timeout = std::time::Duration::from_secs(cfg.proxy.drain_timeout_secs);
    if let Err(e) = drain(&proxy, &b, &server(c.replica, c.port), timeout).await {
        tracing::warn!(host, "the proxy could not drain replica {}: {e}", c.replica);
    }
}

/// Stop replica `c` gracefully and remove it, with the container retired behind it.
async fn remove(docker: &Docker, t: &Spec<'_>, c: &Running) {
    let stop = StopContainerOptionsBuilder::default()
        .t(t.container.stop_timeout_secs.min(i32::MAX as u64) as i32)
        .build();
    let _ = docker.stop_container(&c.id, Some(stop)).await;
    let _ = docker.remove_container(&c.id, force()).await;
    let (_, retired) = t.names();
    let _ = docker.remove_container(&retired, force()).await;
}

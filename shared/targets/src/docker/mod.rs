//! The `docker` target: a rolling update over plain Docker hosts, one host (and replica)
//! at a time. On each the new container starts on the free blue/green port, must pass
//! its health check, and only then is the old one stopped and kept (renamed `-retired`)
//! so a rollback is instant. Nothing is stopped before every host has the image and
//! the new container is healthy; if a host fails, the hosts already switched are
//! switched back.

mod canary;
mod names;
pub mod proxy;
mod retire;
mod scale;
mod switch;
mod verify;

use crate::{Deploy, DeployError, Failure, Outcome, ReadError, Running, ScaleOutcome, Target};
use ferry_docker::{Docker, connect_host, running_all};
use ferry_shared::bus::Lock;
use ferry_shared::config::{ContainerConfig, DockerHostConfig, FerryConfig};
use ferry_shared::event::{Endpoint, HostOutcome, HostTiming};
use ferry_shared::order::RunOrder;
use retire::{Back, Switched, force, retire_all, undo};
use std::time::Instant;
use uuid::Uuid;

/// A Docker host of the environment.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// How it is reached (URL, TLS certificates, SSH key) and where its containers answer.
    pub config: DockerHostConfig,
}

/// One environment's Docker hosts.
pub struct DockerTarget<'a> {
    /// For pulls: the registry's credentials and the pull settings.
    pub(crate) cfg: &'a FerryConfig,
    pub(crate) project: &'a str,
    pub(crate) environment: &'a str,
    pub(crate) hosts: Vec<Host>,
    /// The project's container, with the environment's ports.
    pub(crate) container: ContainerConfig,
}

/// What one replica's switch puts there.
#[derive(Clone, Copy)]
pub(crate) struct Spec<'a> {
    project: &'a str,
    environment: &'a str,
    image: &'a str,
    revision: &'a str,
    run_id: Uuid,
    order: Option<&'a RunOrder>,
    resets_mark: bool,
    container: &'a ContainerConfig,
    /// Which replica on each host.
    replica: u32,
    /// How many replicas the host runs.
    replicas: u32,
    /// Set when the host's proxy fronts the project in this environment: switches go
    /// through it (see `proxy`).
    proxied: Option<&'a FerryConfig>,
    /// The deploy lock, asked before each switch (see [`Deploy::fence`]).
    fence: Option<&'a Lock>,
}

/// Why a deploy on Docker hosts stopped without an outcome.
pub(crate) enum Halt {
    Read(ReadError),
    /// The deploy lock was lost; nothing more was switched.
    LockLost,
}

impl From<ReadError> for Halt {
    fn from(e: ReadError) -> Self {
        Self::Read(e)
    }
}

impl Spec<'_> {
    /// Go on only while the deploy lock is held: another updater may hold it once it
    /// is lost, and two must never switch one environment at once.
    pub(crate) async fn still_locked(&self) -> Result<(), Halt> {
        match self.fence {
            Some(lock) if !lock.held().await => Err(Halt::LockLost),
            _ => Ok(()),
        }
    }
}

impl DockerTarget<'_> {
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Every host's running containers of the project and environment, newest first
    /// (in the environment's host order).
    pub async fn running_per_host(&self) -> Vec<(&Host, Result<Vec<Running>, ReadError>)> {
        let mut all = Vec::new();
        for host in &self.hosts {
            all.push((host, self.running_on(host).await.map(|(_, r)| r)));
        }
        all
    }

    /// The running containers of the project and environment on `host`, newest first.
    pub(crate) async fn running_per_host_of(&self, host: &Host) -> Result<Vec<Running>, ReadError> {
        Ok(self.running_on(host).await?.1)
    }

    pub(crate) async fn running_on(
        &self,
        host: &Host,
    ) -> Result<(Docker, Vec<Running>), ReadError> {
        let docker = connect_host(&host.config)
            .await
            .map_err(|source| ReadError::Connect {
                host: host.name.clone(),
                source,
            })?;
        let running = running_all(&docker, self.project, self.environment)
            .await
            .map_err(|source| ReadError::List {
                host: host.name.clone(),
                source,
            })?;
        Ok((docker, running))
    }

    /// How many replicas the deploy of run `run` runs on `host`: as many as run there
    /// now (the scale `ferry scale` or an earlier deploy left), else
    /// `container.replicas`. What runs there only of this very run was started by an
    /// interrupted first deploy of it: that one goes on to its own number.
    pub(crate) async fn replicas_on(&self, host: &Host, run: Uuid) -> Result<u32, ReadError> {
        let running = self.running_on(host).await?.1;
        let now = running.iter().map(|r| r.replica + 1).max();
        let first = running.iter().all(|r| r.run_id == Some(run));
        Ok(match now {
            Some(n) if first => n.max(self.container.replicas),
            Some(n) => n,
            None => self.container.replicas,
        }
        .max(1))
    }

    /// The configuration, when the hosts' proxy fronts this project here.
    pub(crate) fn proxied(&self) -> Option<&FerryConfig> {
        self.cfg
            .proxy_port(self.project, self.environment)
            .map(|_| self.cfg)
    }

    /// Most replicas per host the ports leave room for (a blue/green pair each).
    pub(crate) fn max_replicas(&self) -> u32 {
        (self.container.ports.len() / 2) as u32
    }

    /// Pull the image onto every host first: a rollback or a manual deploy may name an
    /// image the hosts never had (or one cleaned up since).
    async fn missing_image(&self, image: &str) -> Option<Failure> {
        let pairs: Vec<(String, DockerHostConfig)> = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.config.clone()))
            .collect();
        let missing: Vec<String> = ferry_docker::pull::pull_onto(self.cfg, image, &pairs)
            .await
            .into_iter()
            .filter_map(|r| r.error)
            .collect();
        (!missing.is_empty()).then(|| Failure::ImageMissing {
            environment: self.environment.to_owned(),
            missing,
        })
    }

    async fn apply(&self, d: &Deploy<'_>, rollback: bool) -> Result<Outcome, DeployError> {
        if let Some(failure) = self.missing_image(d.image).await {
            return Ok(Outcome::Failed(failure));
        }
        let spec = Spec {
            project: self.project,
            environment: self.environment,
            image: d.image,
            revision: d.revision,
            run_id: d.run_id,
            order: d.order,
            resets_mark: d.resets_mark,
            container: &self.container,
            replica: 0,
            replicas: 1,
            proxied: self.proxied(),
            fence: d.fence,
        };
        // A rollback is the way back to a known release: no canary.
        let canary = match (&spec.proxied, rollback) {
            (Some(cfg), false) => cfg
                .environments
                .get(self.environment)
                .and_then(|e| e.canary.as_ref()),
            _ => None,
        };
        let outcome = match canary {
            Some(canary) => self.canary(&spec, canary, d.approved).await,
            None => self.rolling(&spec, rollback).await,
        };
        outcome.map_err(|halt| match halt {
            Halt::Read(source) => DeployError::Read {
                environment: self.environment.to_owned(),
                source: Box::new(source),
            },
            Halt::LockLost => {
                tracing::warn!(
                    environment = self.environment,
                    "the deploy lock was lost: stopped before the next switch"
                );
                DeployError::LockLost {
                    environment: self.environment.to_owned(),
                }
            }
        })
    }

    /// Switch every host and replica in turn; undo them all if one fails.
    async fn rolling(&self, spec: &Spec<'_>, rollback: bool) -> Result<Outcome, Halt> {
        let mut switched: Vec<Switched> = Vec::new();
        let mut timings = Vec::new();
        let (mut previous_image, mut previous_revision) = (None, None);
        for host in &self.hosts {
            let replicas = self.replicas_on(host, spec.run_id).await?;
            for replica in 0..replicas {
                let t = &Spec {
                    replica,
                    replicas,
                    ..*spec
                };
                let label = t.host_label(&host.name);
                let started = Instant::now();
                let (docker, all) = self.running_on(host).await?;
                let all = all.into_iter().filter(|r| r.replica == replica).collect();
                let old = settle(&docker, host, t, all).await;
                let timing = |outcome, port| HostTiming {
                    host: label.clone(),
                    millis: started.elapsed().as_millis() as u64,
                    outcome,
                    endpoint: Some(Endpoint {
                        address: host.config.address(),
                        port,
                    }),
                };
                if let Some(old) = &old {
                    if old.image == t.image {
                        timings.push(HostTiming {
                            millis: 0,
                            ..timing(HostOutcome::AlreadyRunning, old.port)
                        });
                        continue;
                    }
                    if !rollback
                        && t.order.is_some_and(|o| {
                            o.is_behind(old.order.as_ref(), &old.revision, t.revision)
                        })
                    {
                        undo(&switched, self.cfg).await;
                        return Ok(Outcome::Superseded {
                            running: old.clone(),
                        });
                    }
                    previous_image.get_or_insert_with(|| old.image.clone());
                    previous_revision.get_or_insert_with(|| old.revision.clone());
                }
                // Hosts switched so far stay switched: the next holder of the lock
                // finds them on this image and goes on from here.
                t.still_locked().await?;
                let restarted = match rollback {
                    true => switch::restart_retired(&docker, host, t, old.as_ref()).await,
                    false => None,
                };
                let result = match restarted {
                    Some(Ok(done)) => Ok(done),
                    Some(Err(why)) => {
                        // The retired container is no better than a new one: start one.
                        tracing::warn!(host = %label, "the retired container could not be started again ({why}); starting a new one");
                        switch::switch_host(&docker, host, t, old.as_ref()).await
                    }
                    None => switch::switch_host(&docker, host, t, old.as_ref()).await,
                };
                match result {
                    Ok((new_name, port)) => {
                        timings.push(timing(HostOutcome::Updated, port));
                        let back = t.proxied.map(|_| Back {
                            host: host.name.clone(),
                            backend: proxy::backend(t.project, t.environment),
                            new: proxy::server(replica, port),
                            old: old.as_ref().map(|o| proxy::server(replica, o.port)),
                        });
                        switched.push(Switched {
                            docker,
                            old,
                            new_name,
                            back,
                        });
                    }
                    Err(why) => {
                        undo(&switched, self.cfg).await;
                        return Ok(Outcome::Failed(Failure::Host { host: label, why }));
                    }
                }
            }
        }
        Ok(Outcome::Succeeded {
            previous_image,
            previous_revision,
            hosts: timings,
        })
    }
}

/// What this replica runs, once the leftovers of an interrupted switch are settled.
///
/// More than one running means a switch was interrupted (the updater killed between
/// starting the new container and retiring the old one), or a canary was left (held for
/// an approval, or its updater died). It is finished first, so a leftover neither keeps
/// serving nor holds the port the new container needs. Behind the proxy, what it sends
/// the most to is kept (a canary's old release), and it takes the traffic before the
/// others are drained and stopped.
///
/// Its mark is the one the environment reached (see `retire::reached`).
async fn settle(docker: &Docker, host: &Host, t: &Spec<'_>, all: Vec<Running>) -> Option<Running> {
    let retired = retire::retired(docker, t).await;
    let mut kept = settle_leftovers(docker, host, t, all).await?;
    kept.order = retire::reached(&kept, retired.as_ref());
    Some(kept)
}

async fn settle_leftovers(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    all: Vec<Running>,
) -> Option<Running> {
    let (mut mine, mut others): (Vec<Running>, Vec<Running>) =
        all.into_iter().partition(|r| r.image == t.image);
    let proxy = t.proxied.map(|cfg| proxy::Proxy {
        docker,
        cfg,
        host: &host.name,
    });
    let b = proxy::backend(t.project, t.environment);
    if let Some(proxy) = &proxy
        && others.len() > 1
    {
        let servers = proxy.servers(&b).await.unwrap_or_default();
        let weight = |r: &Running| {
            servers
                .iter()
                .find(|s| s.name == proxy::server(t.replica, r.port) && s.taking())
                .map_or(0, |s| s.weight)
        };
        // Oldest first, then by traffic: on a tie the older release stays.
        others.reverse();
        others.sort_by_key(|r| std::cmp::Reverse(weight(r)));
    }
    // Next to the old one, a container of this image was never confirmed healthy (the
    // switch stopped during its check): check it now, or start afresh.
    if let (Some(leftover), Some(_)) = (mine.first(), others.first())
        && let Err(why) = verify::verify(docker, host, t, &leftover.id, leftover.port).await
    {
        tracing::warn!(container = %leftover.id, "a container an interrupted deploy left {why}; starting a new one");
        for c in mine.drain(..) {
            let _ = docker.remove_container(&c.id, force()).await;
        }
    }
    let mut all = mine.into_iter().chain(others);
    let kept = all.next()?;
    let extra: Vec<Running> = all.collect();
    if extra.is_empty() {
        return Some(kept);
    }
    if let Some(proxy) = &proxy {
        let others: Vec<String> = extra
            .iter()
            .map(|r| proxy::server(t.replica, r.port))
            .collect();
        let check = std::time::Duration::from_secs(t.container.health_timeout_secs);
        let drain = std::time::Duration::from_secs(proxy.cfg.proxy.drain_timeout_secs);
        let keep = proxy::server(t.replica, kept.port);
        if let Err(e) = proxy::take_over(proxy, &b, &keep, &others, check, drain).await {
            tracing::warn!(host = %host.name, "the proxy could not settle an interrupted switch: {e}");
        }
    }
    retire_all(docker, t, &extra).await;
    Some(kept)
}

impl Target for DockerTarget<'_> {
    async fn running(&self) -> Result<Option<Running>, ReadError> {
        for host in &self.hosts {
            if let Some(r) = self.running_on(host).await?.1.into_iter().next() {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    async fn deploy(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        self.apply(d, false).await
    }

    async fn roll_back(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        self.apply(d, true).await
    }

    async fn scale(&self, to: u32) -> Result<ScaleOutcome, DeployError> {
        self.scale_to(to).await.map_err(|source| DeployError::Read {
            environment: self.environment.to_owned(),
            source: Box::new(source),
        })
    }
}

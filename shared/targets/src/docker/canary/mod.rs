//! Canary deploys on Docker hosts behind the proxy. The new release starts next to the
//! old one on every host and replica (each must pass Ferry's health check and then the
//! proxy's), then takes a growing share of new requests, step by step, everywhere at
//! once. During each step the proxy's counters for the new release (and, if set, a
//! Prometheus query) are watched; a step that breaks its bounds sends all traffic back
//! to the old release, drains and removes the new one, and fails the deploy with the
//! numbers. A step with `approve` ends the deploy there ([`Outcome::Held`]); the deploy
//! of the same run again (after `ferry approve`) finds the split in the proxy and goes
//! on. So does the deploy redelivered after an updater died mid-canary: the split lives
//! in the proxy (and its state file), never only in the updater's memory.

mod judge;
mod prometheus;

use super::Halt;
use super::proxy::{Proxy, ServerStat, backend, enter, revert, server, split};
use super::retire::{Switched, force, retire, undo};
use super::{DockerTarget, Host, Spec, settle, switch};
use crate::{Failure, Outcome, ReadError, Running};
use ferry_docker::Docker;
use ferry_shared::config::{CanaryConfig, CanaryStep, FerryConfig};
use ferry_shared::event::{Endpoint, HostOutcome, HostTiming};
use judge::Seen;
use std::time::{Duration, Instant};

/// One replica's two releases while the canary runs.
struct Pair {
    docker: Docker,
    host: Host,
    label: String,
    replica: u32,
    replicas: u32,
    old: Running,
    /// The new container (its id or name) and slot.
    new: String,
    new_port: u16,
    started: Instant,
}

impl Pair {
    fn proxy<'a>(&'a self, cfg: &'a FerryConfig) -> Proxy<'a> {
        Proxy {
            docker: &self.docker,
            cfg,
            host: &self.host.name,
        }
    }

    fn old_server(&self) -> String {
        server(self.replica, self.old.port)
    }

    fn new_server(&self) -> String {
        server(self.replica, self.new_port)
    }

    /// Send `percent` of this replica's new requests to the new release.
    async fn split(&self, cfg: &FerryConfig, b: &str, percent: u8) -> Result<(), String> {
        split(
            &self.proxy(cfg),
            b,
            &self.old_server(),
            &self.new_server(),
            percent,
        )
        .await
        .map_err(|e| format!("the proxy on {} {e}", self.host.name))
    }
}

/// What the deploy has done so far, to finish or undo it.
struct Progress {
    pairs: Vec<Pair>,
    /// Replicas where nothing ran: switched at once (no canary without an old release).
    fresh: Vec<Switched>,
    timings: Vec<HostTiming>,
    previous: Option<Running>,
}

impl DockerTarget<'_> {
    /// Deploy `spec` as a canary (the environment has `canary` and the proxy fronts the
    /// project). `approved`: an operator approved the step it was held at.
    pub(super) async fn canary(
        &self,
        spec: &Spec<'_>,
        canary: &CanaryConfig,
        approved: bool,
    ) -> Result<Outcome, Halt> {
        let cfg = self.cfg;
        let mut p = Progress {
            pairs: Vec::new(),
            fresh: Vec::new(),
            timings: Vec::new(),
            previous: None,
        };
        if let Some(end) = self.prepare(spec, &mut p).await? {
            return Ok(end);
        }
        let b = backend(self.project, self.environment);
        let share = self.share(&p.pairs, &b).await;
        let steps = remaining(&canary.steps, share, approved);
        if !p.pairs.is_empty() {
            tracing::info!(
                environment = self.environment,
                share,
                steps = steps.len(),
                "canary"
            );
        }
        for step in steps.iter().filter(|_| !p.pairs.is_empty()) {
            // A split left as it is: the next holder of the lock reads it from the
            // proxy and goes on from there.
            spec.still_locked().await?;
            if let Err(why) = self.step(&p.pairs, &b, step, canary, spec).await {
                tracing::warn!(
                    environment = self.environment,
                    percent = step.percent,
                    "canary stopped: {why}"
                );
                self.abort(&p, &b).await;
                return Ok(Outcome::Failed(Failure::Canary {
                    percent: step.percent,
                    why,
                }));
            }
            if step.approve {
                tracing::info!(
                    environment = self.environment,
                    percent = step.percent,
                    "canary waits for approval"
                );
                return Ok(Outcome::Held {
                    percent: step.percent,
                });
            }
        }
        if !p.pairs.is_empty() {
            spec.still_locked().await?;
        }
        for pair in &p.pairs {
            self.promote(pair, &b, cfg).await;
        }
        let mut timings = p.timings;
        timings.extend(p.pairs.iter().map(|pair| HostTiming {
            host: pair.label.clone(),
            millis: pair.started.elapsed().as_millis() as u64,
            outcome: HostOutcome::Updated,
            endpoint: Some(Endpoint {
                address: pair.host.config.address(),
                port: pair.new_port,
            }),
        }));
        Ok(Outcome::Succeeded {
            previous_image: p.previous.as_ref().map(|r| r.image.clone()),
            previous_revision: p.previous.map(|r| r.revision),
            hosts: timings,
        })
    }

    /// A canary of `image` left held (its approval was refused or ran out): every
    /// replica's traffic back to the old release, the new one drained and removed.
    /// Whether there was such a canary.
    pub async fn abandon(&self, image: &str) -> Result<bool, ReadError> {
        let Some(cfg) = self.proxied() else {
            return Ok(false);
        };
        let b = backend(self.project, self.environment);
        let drain = Duration::from_secs(cfg.proxy.drain_timeout_secs);
        let mut found = false;
        for host in &self.hosts {
            let (docker, all) = self.running_on(host).await?;
            let proxy = Proxy {
                docker: &docker,
                cfg,
                host: &host.name,
            };
            let replicas: std::collections::BTreeSet<u32> = all.iter().map(|r| r.replica).collect();
            for replica in replicas {
                let (mine, others): (Vec<Running>, Vec<Running>) = all
                    .iter()
                    .filter(|r| r.replica == replica)
                    .cloned()
                    .partition(|r| r.image == image);
                let Some(new) = mine.first() else { continue };
                if others.is_empty() {
                    continue;
                }
                found = true;
                let old = with_most_traffic(&proxy, &b, replica, others).await;
                let (o, n) = (server(replica, old.port), server(replica, new.port));
                if let Err(e) = revert(&proxy, &b, &o, &n, drain).await {
                    tracing::warn!(host = %host.name, "the proxy could not be switched back: {e}");
                }
                let _ = docker.remove_container(&new.id, force()).await;
                tracing::info!(host = %host.name, replica, "canary abandoned: back on the old release");
            }
        }
        Ok(found)
    }

    /// Start the new release next to the old one on every host and replica, or find it
    /// there (an interrupted or held canary of this image). `Some` ends the deploy early.
    async fn prepare(
        &self,
        spec: &Spec<'_>,
        p: &mut Progress,
    ) -> Result<Option<Outcome>, ReadError> {
        let b = backend(self.project, self.environment);
        for host in &self.hosts {
            let replicas = self.replicas_on(host, spec.run_id).await?;
            for replica in 0..replicas {
                let t = Spec {
                    replica,
                    replicas,
                    ..*spec
                };
                let label = t.host_label(&host.name);
                let started = Instant::now();
                let (docker, all) = self.running_on(host).await?;
                let (mine, others): (Vec<Running>, Vec<Running>) = all
                    .into_iter()
                    .filter(|r| r.replica == replica)
                    .partition(|r| r.image == t.image);
                let proxy = Proxy {
                    docker: &docker,
                    cfg: self.cfg,
                    host: &host.name,
                };
                if let Err(e) = proxy.ensure().await {
                    return Ok(Some(self.fail(p, &b, label, e.into()).await));
                }
                let endpoint = |port| {
                    Some(Endpoint {
                        address: host.config.address(),
                        port,
                    })
                };
                if let (Some(new), false) = (mine.first(), others.is_empty()) {
                    // This image's canary, left by an updater that stopped or held for
                    // approval: the old release is the other one the proxy sends to.
                    let old = with_most_traffic(&proxy, &b, replica, others).await;
                    p.previous.get_or_insert_with(|| old.clone());
                    p.pairs.push(Pair {
                        docker: docker.clone(),
                        host: host.clone(),
                        label,
                        replica,
                        replicas,
                        old,
                        new: new.id.clone(),
                        new_port: new.port,
                        started,
                    });
                    continue;
                }
                if let Some(new) = mine.first() {
                    p.timings.push(HostTiming {
                        host: label,
                        millis: 0,
                        outcome: HostOutcome::AlreadyRunning,
                        endpoint: endpoint(new.port),
                    });
                    continue;
                }
                let Some(old) = settle(&docker, host, &t, others).await else {
                    match switch::switch_host(&docker, host, &t, None).await {
                        Ok((new_name, port)) => {
                            p.timings.push(HostTiming {
                                host: label,
                                millis: started.elapsed().as_millis() as u64,
                                outcome: HostOutcome::Updated,
                                endpoint: endpoint(port),
                            });
                            p.fresh.push(Switched {
                                docker,
                                old: None,
                                new_name,
                                back: None,
                            });
                        }
                        Err(why) => return Ok(Some(self.fail(p, &b, label, why).await)),
                    }
                    continue;
                };
                if t.order
                    .is_some_and(|o| o.is_behind(old.order.as_ref(), &old.revision, t.revision))
                {
                    self.abort(p, &b).await;
                    return Ok(Some(Outcome::Superseded { running: old }));
                }
                p.previous.get_or_insert_with(|| old.clone());
                let (new, new_port) = match switch::start_beside(&docker, host, &t, &old).await {
                    Ok(started) => started,
                    Err(why) => return Ok(Some(self.fail(p, &b, label, why).await)),
                };
                let check = Duration::from_secs(t.container.health_timeout_secs);
                if let Err(e) = enter(&proxy, &b, &server(replica, new_port), check).await {
                    let _ = docker.remove_container(&new, force()).await;
                    return Ok(Some(self.fail(p, &b, label, e.into()).await));
                }
                p.pairs.push(Pair {
                    docker,
                    host: host.clone(),
                    label,
                    replica,
                    replicas,
                    old,
                    new,
                    new_port,
                    started,
                });
            }
        }
        Ok(None)
    }

    /// The share the new release has now everywhere (the smallest over the replicas):
    /// 0 right after the start, a step's share when a canary is resumed.
    async fn share(&self, pairs: &[Pair], b: &str) -> u8 {
        let mut least = 100u64;
        for pair in pairs {
            let servers = pair.proxy(self.cfg).servers(b).await.unwrap_or_default();
            let weight = |name: &str| {
                servers
                    .iter()
                    .find(|s| s.name == name && s.taking())
                    .map_or(0, |s| s.weight)
            };
            let (old, new) = (weight(&pair.old_server()), weight(&pair.new_server()));
            least = least.min((new * 100).checked_div(old + new).unwrap_or(0));
        }
        least as u8
    }

    /// Run one step: set the split everywhere, then watch it for the step's time.
    async fn step(
        &self,
        pairs: &[Pair],
        b: &str,
        step: &CanaryStep,
        canary: &CanaryConfig,
        spec: &Spec<'_>,
    ) -> Result<(), String> {
        for pair in pairs {
            pair.split(self.cfg, b, step.percent).await?;
        }
        tracing::info!(
            environment = self.environment,
            percent = step.percent,
            "canary step"
        );
        let seen = self.watch(pairs, b, step, canary).await?;
        tracing::info!(
            environment = self.environment,
            percent = step.percent,
            "canary step passed: {}",
            seen.describe()
        );
        let Some(check) = &canary.prometheus else {
            return Ok(());
        };
        let servers: Vec<String> = pairs.iter().map(Pair::new_server).collect();
        let query = prometheus::query_for(
            check,
            self.project,
            self.environment,
            spec.revision,
            &servers,
        );
        match prometheus::ask(check, &query).await {
            Ok(prometheus::Answer::Value(v)) if v > check.max => Err(format!(
                "Prometheus' `{query}` is {v}, above the {} allowed; the proxy saw {}",
                check.max,
                seen.describe()
            )),
            Ok(prometheus::Answer::Value(v)) => {
                tracing::info!(value = v, "canary: Prometheus within bounds");
                Ok(())
            }
            Ok(prometheus::Answer::NoData) => {
                tracing::warn!(
                    query,
                    "canary: Prometheus has no data for the query; not judged"
                );
                Ok(())
            }
            Err(why) => Err(format!("the Prometheus check could not be made: {why}")),
        }
    }

    /// Watch the new release's counters for the step's time, judging them every second.
    async fn watch(
        &self,
        pairs: &[Pair],
        b: &str,
        step: &CanaryStep,
        canary: &CanaryConfig,
    ) -> Result<Seen, String> {
        let mut base = Vec::new();
        for pair in pairs {
            base.push(self.new_stat(pair, b).await?.counters);
        }
        let mut seen = Seen::default();
        let deadline = Instant::now() + step.hold;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            for (pair, base) in pairs.iter().zip(base.iter_mut()) {
                let now = self.new_stat(pair, b).await?;
                if !now.status.starts_with("UP") {
                    return Err(format!(
                        "the proxy's check of the new release on {} failed ({} {}); {}",
                        pair.label,
                        now.status,
                        now.check_status,
                        seen.describe()
                    ));
                }
                let restarted = match now.counters.since(base) {
                    Some(delta) => {
                        seen.counters.add(&delta);
                        if delta.responses > 0 {
                            seen.rtime_ms = seen.rtime_ms.max(now.rtime);
                        }
                        false
                    }
                    None => true,
                };
                // A restart starts the counters again (the split came back from the
                // state file, but the last change may not have been saved), and someone
                // may have changed the weights: set the step's split again either way.
                if restarted || now.weight != u64::from(step.percent) {
                    if restarted {
                        tracing::warn!(host = %pair.host.name, "the proxy restarted during the canary");
                    }
                    pair.split(self.cfg, b, step.percent).await?;
                }
                *base = now.counters;
            }
            if let Some(why) = judge::broken(canary, &seen) {
                return Err(format!("{why} ({})", seen.describe()));
            }
            if Instant::now() >= deadline {
                return Ok(seen);
            }
        }
    }

    async fn new_stat(&self, pair: &Pair, b: &str) -> Result<ServerStat, String> {
        let proxy = pair.proxy(self.cfg);
        let servers = proxy
            .servers(b)
            .await
            .map_err(|e| format!("the proxy on {} {e}", pair.host.name))?;
        servers
            .into_iter()
            .find(|s| s.name == pair.new_server())
            .ok_or_else(|| {
                format!(
                    "the proxy on {} has no server {} (was its configuration changed?)",
                    pair.host.name,
                    pair.new_server()
                )
            })
    }

    /// The canary passed: the new release takes everything, the old one is drained and
    /// retired (kept for an instant rollback).
    async fn promote(&self, pair: &Pair, b: &str, cfg: &FerryConfig) {
        let proxy = pair.proxy(cfg);
        let drain = Duration::from_secs(cfg.proxy.drain_timeout_secs);
        if let Err(e) = split(&proxy, b, &pair.old_server(), &pair.new_server(), 100).await {
            tracing::warn!(host = %pair.host.name, "the proxy: {e}");
        }
        if let Err(e) = super::proxy::drain(&proxy, b, &pair.old_server(), drain).await {
            tracing::warn!(host = %pair.host.name, "the proxy could not drain the old release: {e}");
        }
        retire(&pair.docker, &self.spec_of(pair), &pair.old.id).await;
    }

    /// Stop the canary: every replica's traffic back to its old release, the new one
    /// drained and removed; replicas switched without a canary are switched back.
    async fn abort(&self, p: &Progress, b: &str) {
        let drain = Duration::from_secs(self.cfg.proxy.drain_timeout_secs);
        for pair in &p.pairs {
            let proxy = pair.proxy(self.cfg);
            if let Err(e) = revert(&proxy, b, &pair.old_server(), &pair.new_server(), drain).await {
                tracing::warn!(host = %pair.host.name, "the proxy could not be switched back: {e}");
            }
            let _ = pair.docker.remove_container(&pair.new, force()).await;
        }
        undo(&p.fresh, self.cfg).await;
    }

    async fn fail(
        &self,
        p: &Progress,
        b: &str,
        host: String,
        why: crate::error::SwitchError,
    ) -> Outcome {
        self.abort(p, b).await;
        Outcome::Failed(Failure::Host { host, why })
    }

    fn spec_of<'s>(&'s self, pair: &Pair) -> Spec<'s> {
        Spec {
            project: self.project,
            environment: self.environment,
            image: "",
            revision: "",
            run_id: uuid::Uuid::nil(),
            order: None,
            resets_mark: false,
            container: &self.container,
            replica: pair.replica,
            replicas: pair.replicas,
            proxied: self.proxied(),
            fence: None,
        }
    }
}

/// The steps still to run when the new release has `share` % now: from the first step
/// at or above it (a step interrupted midway is watched again from its start); the
/// step it was held at for approval is passed once approved.
fn remaining(steps: &[CanaryStep], share: u8, approved: bool) -> Vec<CanaryStep> {
    let mut rest: Vec<CanaryStep> = steps
        .iter()
        .filter(|s| s.percent >= share)
        .cloned()
        .collect();
    if share >= 100 {
        rest.clear();
    }
    if approved
        && let Some(first) = rest.first()
        && first.percent == share
        && first.approve
    {
        rest.remove(0);
    }
    rest
}

/// Of a replica's running containers, the one its proxy sends the most to (the oldest
/// on a tie); the others are stopped.
async fn with_most_traffic(
    proxy: &Proxy<'_>,
    b: &str,
    replica: u32,
    mut others: Vec<Running>,
) -> Running {
    let servers = proxy.servers(b).await.unwrap_or_default();
    let weight = |r: &Running| {
        servers
            .iter()
            .find(|s| s.name == server(replica, r.port) && s.taking())
            .map_or(0, |s| s.weight)
    };
    // Newest first: the last of the heaviest is the oldest.
    let best = (0..others.len())
        .rev()
        .max_by_key(|i| weight(&others[*i]))
        .unwrap_or(0);
    let kept = others.remove(best);
    let drain = Duration::from_secs(proxy.cfg.proxy.drain_timeout_secs);
    for extra in others {
        tracing::warn!(container = %extra.id, "removing a container an interrupted deploy left next to a canary");
        let _ = super::proxy::drain(proxy, b, &server(replica, extra.port), drain).await;
        let _ = proxy.docker.remove_container(&extra.id, force()).await;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<CanaryStep> {
        [(5, false), (25, true), (50, false)]
            .map(|(percent, approve)| CanaryStep {
                percent,
                hold: Duration::from_secs(60),
                approve,
            })
            .to_vec()
    }

    #[test]
    fn a_resumed_canary_goes_on_from_where_the_proxy_says_it_is() {
        let percents = |v: Vec<CanaryStep>| v.iter().map(|s| s.percent).collect::<Vec<_>>();
        assert_eq!(percents(remaining(&steps(), 0, false)), [5, 25, 50]);
        // Interrupted in the 5 % step: watched again.
        assert_eq!(percents(remaining(&steps(), 5, false)), [5, 25, 50]);
        // Held at 25 %: redelivered before the approval waits again, approved goes on.
        assert_eq!(percents(remaining(&steps(), 25, false)), [25, 50]);
        assert_eq!(percents(remaining(&steps(), 25, true)), [50]);
        // Between steps (a share no step has), the next step up.
        assert_eq!(percents(remaining(&steps(), 30, false)), [50]);
        assert!(remaining(&steps(), 100, false).is_empty());
    }
}

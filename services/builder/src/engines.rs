//! The build engines (`build.docker_hosts`): which one a build runs on.
//!
//! Each engine has `build.builds_per_host` slots in this process. A build prefers the
//! engine its project hashes to (rendezvous hashing: its layer cache is warm there, and
//! a redelivered build finds its image again), takes another engine with a free slot
//! when that one is busy, and waits for any slot when all are. An engine that cannot be
//! reached, or fails mid-build, is set aside for `DOWN_FOR` and the build goes to another.

use crate::error::BuildError;
use ferry_shared::config::BuildConfig;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long an engine that failed is passed over (unless every engine is down).
const DOWN_FOR: Duration = Duration::from_secs(30);

pub struct Engines {
    engines: Vec<Engine>,
    /// Woken whenever a slot is given back.
    freed: Arc<Notify>,
}

struct Engine {
    url: String,
    slots: Arc<Semaphore>,
    down_until: Mutex<Option<Instant>>,
}

/// A slot on one engine, connected: given back when dropped.
pub struct Lease {
    pub url: String,
    pub docker: bollard::Docker,
    /// The engine's place in `build.docker_hosts`.
    pub index: usize,
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The slot first, then the wake-up: a waiter woken before the slot is back
        // would find none and sleep until some other build ends.
        drop(self.permit.take());
        self.freed.notify_waiters();
    }
}

impl Engines {
    pub fn new(cfg: &BuildConfig) -> Self {
        let slots = usize::from(cfg.builds_per_host.max(1));
        Self {
            engines: cfg
                .engines()
                .into_iter()
                .map(|url| Engine {
                    url: url.to_owned(),
                    slots: Arc::new(Semaphore::new(slots)),
                    down_until: Mutex::new(None),
                })
                .collect(),
            freed: Arc::new(Notify::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.engines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    /// A connected slot for a build of `project`, on an engine not in `tried`.
    pub async fn lease(&self, project: &str, tried: &[usize]) -> Result<Lease, BuildError> {
        loop {
            // Registered before looking, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            let candidates = self.preference(project, tried);
            if candidates.is_empty() {
                return Err(BuildError::Engine(format!(
                    "no build engine left to try ({} failed); check build.docker_hosts",
                    tried.len()
                )));
            }
            for i in candidates {
                let Ok(permit) = self.engines[i].slots.clone().try_acquire_owned() else {
                    continue;
                };
                let e = &self.engines[i];
                match ferry_docker::connect(&e.url).await {
                    Ok(docker) => {
                        return Ok(Lease {
                            url: e.url.clone(),
                            docker,
                            index: i,
                            permit: Some(permit),
                            freed: self.freed.clone(),
                        });
                    }
                    Err(err) => {
                        tracing::warn!(engine = %e.url, "build engine unreachable, trying another: {err}");
                        self.set_aside(i);
                    }
                }
            }
            freed.await;
        }
    }

    /// The engine a build of `project` goes to when every engine is up and free.
    pub fn preferred(&self, project: &str) -> &str {
        let i = self.preference(project, &[])[0];
        &self.engines[i].url
    }

    /// The engine of `lease` failed: pass it over for a while.
    pub fn failed(&self, lease: &Lease) {
        tracing::warn!(engine = %lease.url, "build engine failed: set aside for {} s", DOWN_FOR.as_secs());
        self.set_aside(lease.index);
    }

    fn set_aside(&self, i: usize) {
        *self.engines[i]
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + DOWN_FOR);
    }

    fn is_down(&self, i: usize) -> bool {
        self.engines[i]
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    /// Engines not yet tried, best first: up before down (all down: try them anyway),
    /// then the project's own engine, then the one with the most free slots.
    fn preference(&self, project: &str, tried: &[usize]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.engines.len())
            .filter(|i| !tried.contains(i))
            .collect();
        let score = |i: &usize| {
            let mut h = DefaultHasher::new();
            (project, &self.engines[*i].url).hash(&mut h);
            h.finish()
        };
        let own = order.iter().copied().max_by_key(score);
        order.sort_by_key(|&i| {
            (
                self.is_down(i),
                Some(i) != own,
                std::cmp::Reverse(self.engines[i].slots.available_permits()),
            )
        });
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engines(n: usize) -> Engines {
        let cfg = BuildConfig {
            docker_hosts: (0..n)
                .map(|i| format!("tcp://127.0.0.1:{}", 1 + i))
                .collect(),
            ..BuildConfig::default()
        };
        Engines::new(&cfg)
    }

    #[test]
    fn a_project_prefers_its_own_engine_and_failed_ones_go_last() {
        let e = engines(3);
        let first = e.preference("shop", &[])[0];
        assert_eq!(e.preference("shop", &[])[0], first, "stable");
        // Across projects, more than one engine is someone's own.
        let owns: std::collections::HashSet<usize> = (0..32)
            .map(|p| e.preference(&format!("p{p}"), &[])[0])
            .collect();
        assert!(owns.len() > 1, "{owns:?}");
        e.set_aside(first);
        assert_ne!(e.preference("shop", &[])[0], first);
        assert_eq!(*e.preference("shop", &[]).last().unwrap(), first);
        assert!(!e.preference("shop", &[first]).contains(&first));
    }
}

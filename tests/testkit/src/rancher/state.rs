//! The simulator's in-memory model of one environment, behind one mutex: hosts, stacks,
//! services and instances, how to find them, and the health cattle derives from them.

use super::lifecycle::ACTIVE_STATES;
use super::{Misbehave, PROJECT};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub(super) struct Host {
    pub(super) id: String,
    pub(super) hostname: String,
    pub(super) agent_ip: String,
    pub(super) state: String,
    /// The Docker daemon behind it; `None` for a listed host that cannot run anything.
    pub(super) docker: Option<String>,
}

pub(super) struct Stack {
    pub(super) id: String,
    pub(super) uuid: String,
    pub(super) name: String,
    pub(super) description: Value,
    pub(super) state: String,
    pub(super) start_on_create: bool,
    pub(super) created: u64,
    pub(super) removed: Option<u64>,
}

pub(super) struct Checks {
    pub(super) successes: u32,
    pub(super) failures: u32,
    /// When the current (re)initialization began.
    pub(super) since: Instant,
    pub(super) next: Instant,
    /// `wget` is not on the image's PATH: use `/bin/busybox wget`.
    pub(super) busybox: bool,
}

pub(super) struct Instance {
    pub(super) id: String,
    pub(super) uuid: String,
    pub(super) name: String,
    pub(super) service: String,
    pub(super) stack: String,
    /// The `<n>` of its name.
    pub(super) index: u32,
    /// Index into `Sim::hosts`.
    pub(super) host: usize,
    pub(super) container: String,
    pub(super) external_id: String,
    pub(super) state: String,
    pub(super) health: Option<String>,
    pub(super) launch: Value,
    pub(super) ip: String,
    pub(super) message: Option<String>,
    pub(super) created: u64,
    pub(super) first_running: Option<u64>,
    pub(super) removed: Option<u64>,
    /// Also a generation: the monitor only applies what it saw of the same start.
    pub(super) start_count: u32,
    pub(super) checks: Checks,
}

pub(super) struct Service {
    pub(super) id: String,
    pub(super) uuid: String,
    pub(super) name: String,
    pub(super) stack: String,
    pub(super) description: Value,
    pub(super) state: String,
    pub(super) scale: u32,
    pub(super) launch: Value,
    pub(super) previous: Option<Value>,
    pub(super) start_on_create: bool,
    /// Instances of the current launchConfig, oldest first.
    pub(super) current: Vec<String>,
    /// Instances of the previous launchConfig, stopped and kept for a rollback.
    pub(super) kept: Vec<String>,
    pub(super) created: u64,
    pub(super) removed: Option<u64>,
    /// Serialises the service's background operations.
    pub(super) ops: Arc<Mutex<()>>,
}

pub(super) struct Sim {
    /// This simulator's id: the value of [`LABEL_SIM`] on its containers.
    pub(super) tag: String,
    pub(super) base: String,
    pub(super) hosts: Vec<Host>,
    pub(super) stacks: Vec<Stack>,
    pub(super) services: Vec<Service>,
    pub(super) instances: Vec<Instance>,
    pub(super) next_stack: u32,
    pub(super) next_service: u32,
    pub(super) next_instance: u32,
    pub(super) next_ip: u32,
    pub(super) misbehave: Misbehave,
    pub(super) requests: Vec<(String, String)>,
    /// `cleanup` ran: start no more containers.
    pub(super) closed: bool,
}

/// The state the HTTP handlers, the background operations and the monitor share.
pub(super) type Shared = Arc<Mutex<Sim>>;

/// Lock the state even when a thread panicked holding it: the state is still usable, and
/// one failed handler must not fail every request after it.
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, Sim> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Sim {
    pub(super) fn stack(&self, id: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.id == id)
    }

    pub(super) fn stack_named(&self, name: &str) -> Option<&Stack> {
        self.stacks
            .iter()
            .find(|s| s.removed.is_none() && s.name.eq_ignore_ascii_case(name))
    }

    pub(super) fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    pub(super) fn service_mut(&mut self, id: &str) -> Option<&mut Service> {
        self.services.iter_mut().find(|s| s.id == id)
    }

    pub(super) fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    pub(super) fn instance_mut(&mut self, id: &str) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.id == id)
    }

    pub(super) fn url(&self, collection: &str, id: &str) -> String {
        format!("{}/v2-beta/projects/{PROJECT}/{collection}/{id}", self.base)
    }

    /// The service's instances that are not removed, oldest first.
    pub(super) fn instances_of<'a>(
        &'a self,
        s: &'a Service,
    ) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .iter()
            .filter(move |i| i.service == s.id && i.removed.is_none())
    }

    /// `calculateServiceHealthState`: running instances without a health state count as
    /// healthy; `scale` of them are needed.
    pub(super) fn service_health(&self, s: &Service) -> &'static str {
        let (mut healthy, mut init) = (0usize, 0usize);
        for i in self.instances_of(s).filter(|i| i.state == "running") {
            match i.health.as_deref() {
                None | Some("healthy") | Some("updating-healthy") => healthy += 1,
                Some("initializing") | Some("reinitializing") => init += 1,
                _ => {}
            }
        }
        if healthy >= s.scale as usize {
            "healthy"
        } else if init > 0 {
            "initializing"
        } else if healthy > 0 {
            "degraded"
        } else {
            "unhealthy"
        }
    }

    /// `calculateStackHealthState`: over the stack's services that are not being removed.
    pub(super) fn stack_health(&self, st: &Stack) -> &'static str {
        let (mut expected, mut healthy, mut init) = (0, 0, 0);
        for s in self.services.iter().filter(|s| s.stack == st.id) {
            if matches!(s.state.as_str(), "removing" | "removed") {
                continue;
            }
            expected += 1;
            let h = self.service_health(s);
            if ACTIVE_STATES.contains(&s.state.as_str()) && h == "healthy" {
                healthy += 1;
            } else if h == "initializing" {
                init += 1;
            }
        }
        if healthy >= expected {
            "healthy"
        } else if init > 0 {
            "initializing"
        } else if healthy > 0 {
            "degraded"
        } else {
            "unhealthy"
        }
    }

    /// The active host running the fewest instances (the first of equals).
    pub(super) fn pick_host(&self) -> Option<usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.docker.is_some() && h.state == "active")
            .map(|(n, _)| {
                let load = self
                    .instances
                    .iter()
                    .filter(|i| i.host == n && matches!(i.state.as_str(), "starting" | "running"))
                    .count();
                (load, n)
            })
            .min()
            .map(|(_, n)| n)
    }
}

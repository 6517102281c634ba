//! What runs where, per host, as `ferry status` shows it: read from the hosts (or
//! Rancher), never from memory, with the scale and the health of each instance.

use crate::docker::proxy::{Proxy, ServerStat, backend};
use crate::docker::{DockerTarget, Host};
use crate::rancher::RancherTarget;
use crate::{Environment, ReadError, Running};
use ferry_docker::Docker;
use ferry_rancher::{ServiceState, running_of, state_of};
use serde_json::Value;

/// One host's (or the Rancher service's) answer.
#[derive(Debug)]
pub struct HostStatus {
    /// The host's name, or `rancher:<service id>` / `rancher:<stack>/<service>`.
    pub host: String,
    pub state: State,
    /// How many instances it should run: the Rancher service's scale, or the replicas
    /// on the host. None when nothing could be read.
    pub scale: Option<u32>,
    /// `healthy`, or what is not (Rancher's `healthState`; on a Docker host, whether
    /// every replica answers its health check now).
    pub health: Option<String>,
    /// Each instance (replica) with its host, state and health.
    pub instances: Vec<Instance>,
    /// Where the host's proxy sends the environment's requests, per slot (empty without
    /// a proxy).
    pub traffic: Vec<Traffic>,
}

/// One blue/green slot in the host's proxy.
#[derive(Debug)]
pub struct Traffic {
    /// `r<replica>-<port>`.
    pub server: String,
    /// The proxy's word: `UP`, `DOWN`, `DRAIN`, `MAINT`...
    pub status: String,
    /// Its share of new requests, in percent.
    pub percent: u32,
}

#[derive(Debug)]
pub struct Instance {
    pub name: String,
    pub host: String,
    pub state: String,
    pub health: String,
}

#[derive(Debug)]
pub enum State {
    /// Runs this (on Rancher: the service is `active`).
    Running(Running),
    /// The Rancher service is in another state (`upgraded`, `upgrading`...); what its
    /// launchConfig names, if anything.
    Service {
        state: Option<String>,
        running: Option<Running>,
    },
    /// Nothing of the project runs on the host (on Rancher: the service does not
    /// exist yet).
    Nothing,
    /// The host's engine could not be reached.
    Unreachable(String),
    /// The host or Rancher answered with an error.
    Error(String),
}

impl HostStatus {
    fn only(host: String, state: State) -> Self {
        Self {
            host,
            state,
            scale: None,
            health: None,
            instances: Vec::new(),
            traffic: Vec::new(),
        }
    }
}

impl Environment<'_> {
    /// What runs on each of the environment's hosts (one row for a Rancher service).
    pub async fn status(&self) -> Vec<HostStatus> {
        match self {
            Self::Rancher(t) => vec![rancher_status(t).await],
            Self::Docker(t) => {
                let mut rows = Vec::new();
                for host in t.hosts() {
                    rows.push(docker_status(t, host).await);
                }
                rows
            }
        }
    }
}

async fn rancher_status(t: &RancherTarget<'_>) -> HostStatus {
    let service = match t.service().await {
        Ok(Some(service)) => service,
        Ok(None) => return HostStatus::only(t.name(), State::Nothing),
        Err(e) => return HostStatus::only(t.name(), State::Error(e.to_string())),
    };
    let state = match (state_of(&service), running_of(&service)) {
        (ServiceState::Active, Some(run)) => State::Running(run),
        (state, running) => State::Service {
            state: service["state"].as_str().map(|_| state.to_string()),
            running,
        },
    };
    let id = service["id"].as_str().unwrap_or_default();
    let text = |v: &Value, k: &str, or: &str| v[k].as_str().unwrap_or(or).to_owned();
    let instances = match t.instances(id).await {
        Ok(list) => list
            .into_iter()
            .map(|(host, i)| Instance {
                name: text(&i, "name", "-"),
                host,
                state: text(&i, "state", "unknown"),
                // Rancher reports no health for an instance without a check.
                health: text(&i, "healthState", "healthy"),
            })
            .collect(),
        Err(e) => {
            tracing::warn!("cannot list the service's instances: {e}");
            Vec::new()
        }
    };
    HostStatus {
        host: t.name(),
        state,
        scale: service["scale"].as_u64().map(|s| s as u32),
        health: Some(text(&service, "healthState", "healthy")),
        instances,
        traffic: Vec::new(),
    }
}

async fn docker_status(t: &DockerTarget<'_>, host: &Host) -> HostStatus {
    // One connection for the listing, the health probes and the proxy.
    let (docker, running) = match t.running_on(host).await {
        Ok(r) => r,
        Err(ReadError::Connect { source, .. }) => {
            return HostStatus::only(host.name.clone(), State::Unreachable(source.to_string()));
        }
        Err(e) => return HostStatus::only(host.name.clone(), State::Error(e.to_string())),
    };
    let mut replicas: Vec<&Running> = running.iter().collect();
    replicas.sort_by_key(|r| r.replica);
    replicas.dedup_by_key(|r| r.replica);
    let mut instances = Vec::new();
    for r in &replicas {
        let health = match t.health_now(&docker, host, r).await {
            Ok(()) => "healthy".to_owned(),
            Err(why) => format!("unhealthy: {why}"),
        };
        instances.push(Instance {
            name: format!("r{} :{}", r.replica, r.port),
            host: host.name.clone(),
            state: "running".into(),
            health,
        });
    }
    let scale = replicas.iter().map(|r| r.replica + 1).max();
    let sick = instances.iter().filter(|i| i.health != "healthy").count();
    let health = match (instances.len(), sick) {
        (0, _) => None,
        (_, 0) => Some("healthy".to_owned()),
        (n, s) if s == n => Some("unhealthy".to_owned()),
        _ => Some("degraded".to_owned()),
    };
    HostStatus {
        host: host.name.clone(),
        state: running
            .into_iter()
            .next()
            .map_or(State::Nothing, State::Running),
        scale,
        health,
        instances,
        traffic: traffic(t, &docker, host).await,
    }
}

/// The split the host's proxy makes now; empty without a proxy or when it cannot say.
async fn traffic(t: &DockerTarget<'_>, docker: &Docker, host: &Host) -> Vec<Traffic> {
    let Some(cfg) = t.proxied() else {
        return Vec::new();
    };
    let proxy = Proxy {
        docker,
        cfg,
        host: &host.name,
    };
    let servers = match proxy.servers(&backend(t.project, t.environment)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(host = %host.name, "cannot read the proxy: {e}");
            return Vec::new();
        }
    };
    // New requests go to the servers that are up and ready, by weight.
    let taking = ServerStat::taking;
    let total: u64 = servers.iter().filter(|s| taking(s)).map(|s| s.weight).sum();
    servers
        .into_iter()
        .map(|s| Traffic {
            percent: match total {
                0 => 0,
                _ if taking(&s) => (s.weight * 100 / total) as u32,
                _ => 0,
            },
            server: s.name,
            status: s.status,
        })
        .collect()
}

//! A Rancher 1.6 simulator: the `v2-beta` API of one environment (project `1a5`) over real
//! HTTP, with basic auth, Rancher's state machines and error shapes, and real containers:
//! every instance of a service runs its `launchConfig.imageUuid` on the Docker daemon behind
//! the host Rancher scheduled it on, so a "Rancher" deploy in a test yields containers that
//! answer.
//!
//! Written from Rancher 1.6's documentation and the sources it documents (not from Ferry's
//! client):
//! - rancher/rancher.github.io `rancher/v1.6/en/api/v2-beta/index.md` (basic auth with API
//!   keys, `/v2-beta/projects/<id>/<type>` scoping, `PUT` to the `self` link to edit, filters
//!   `field=value` / `field_<modifier>=value`, 100 per page), `api-resources/{service,stack,
//!   container,host,launchConfig,instanceHealthCheck}/index.md` (fields, actions),
//!   `rancher/v1.6/en/cattle/health-checks/index.md` (check options, healthy/degraded/
//!   unhealthy), `rancher/v1.6/en/cattle/stacks/index.md` (scaling: `updating-active`);
//! - rancher/api-spec `specification.md` (collections, `filters`, modifiers eq ne lt lte gt
//!   gte prefix like notlike null notnull, error resources, `201` + `Location` on create);
//! - rancher/cattle (the 1.6 server): `resources/content/schema/base/{stack,service}.json`
//!   (`name`: 1-63 of `a-zA-Z0-9-`, `scale` min 0, default 1), `StackValidationFilter` and
//!   `ServiceValidationFilter` (`NotUnique`/`InvalidCharacters` on `name`, DNS-label service
//!   names, `InvalidReference` on `imageUuid`), gdapi `ValidationHandler`/
//!   `ValidationErrorCodes`/`ValidationErrorImpl` (error codes and `fieldName`),
//!   `spring-process-context.xml` (the service and instance state machines below),
//!   `ServiceDiscoveryServiceImpl.calculate{Service,Stack}HealthState`,
//!   `InstanceHealthcheckRegister` and `HealthcheckServiceImpl` (instance health states);
//! - rancher/go-rancher `v2/generated_{service,stack,container,host,instance_health_check}.go`
//!   (field names) and `v2/common.go` (how clients send filters such as `removed_null`).
//!
//! Service states (cattle's processes): create `registering` → `inactive`, or with
//! `startOnCreate` `activating` → `active`; `activate` `inactive` → `activating` → `active`;
//! `PUT` (update) `active` → `updating-active` → `active`, `inactive` → `updating-inactive`
//! → `inactive`; `deactivate` → `deactivating` → `inactive`; `restart` `active` →
//! `restarting` → `active`; `upgrade` → `upgrading` (cancelupgrade, rollback) → `upgraded`
//! (finishupgrade, rollback) → `finishing-upgrade` → `active`; `rolling-back` → `active`;
//! `canceling-upgrade` → `canceled-upgrade` (rollback); `remove`/`DELETE` → `removing` →
//! `removed`. An action the state does not allow is `422 ActionNotAvailable`. Removed stacks
//! and services stay listed (state `removed`, `removed` set) as Rancher keeps them for a
//! while: clients filter with `removed_null`.
//!
//! Instances (`container`s, named `<stack>-<service>-<n>`) go `starting` → `running`,
//! `stopping` → `stopped`, `removing` → `removed`, or `error` when Docker refuses them. They
//! are spread over the active hosts (least loaded first) and labelled
//! `io.rancher.sim=<simulator>` / `io.rancher.sim.service=<id>` / `io.rancher.sim.instance`.
//! `networkMode: host` runs them with `--network host`; anything else (Rancher's default
//! `managed`) with `--network none`, so instances sharing a machine never fight over a port.
//!
//! Health, as cattle computes it: an instance without `healthCheck` has no `healthState`
//! (`null`; counted as healthy). With one it starts `initializing` (`reinitializing` when it
//! was healthy and starts again), becomes `healthy` after `healthyThreshold` passed checks,
//! and a healthy one `unhealthy` after `unhealthyThreshold` failed ones (failures while
//! initializing are ignored, as Rancher does). The simulator checks with `docker exec
//! <container> wget` (falling back to `/bin/busybox wget`) on `127.0.0.1:<port>` every
//! `interval` ms (at least 500). Simplifications: an instance still initializing after
//! `initializingTimeout` turns `unhealthy` (Rancher would re-create it unless the strategy
//! is `none`), unhealthy or exited containers are not re-created (an exited one shows
//! `stopped`), and `batchSize`/`intervalMillis` of an upgrade are ignored. A service is
//! `healthy` when at least `scale` of its running instances are, else `initializing` if one
//! is, else `degraded` if one is healthy, else `unhealthy`; a stack aggregates its services
//! the same way.
//!
//! It misbehaves on request: slow transitions, an upgrade stuck in `upgrading`, a number of
//! `500`s, actions refused as if a state change raced them.

mod api;
mod errors;
mod filters;
mod health;
mod instances;
mod lifecycle;
mod ops;
mod resources;
mod state;
mod validate;

use instances::{failed, launch_instance, upgrade_instances};
use serde_json::{Value, json};
use state::{Host, Service, Shared, Sim, Stack, lock, now_ms};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const ACCESS_KEY: &str = "sim-access-key";
pub const SECRET_KEY: &str = "sim-secret-key-123";
pub const PROJECT: &str = "1a5";
/// The service [`RancherSim::start`] creates (`web`, in stack [`STACK`]).
pub const SERVICE: &str = "1s12";
/// The stack of [`SERVICE`] (`ferry`).
pub const STACK: &str = "1st1";

/// Label on every container the simulator starts: the simulator's own id.
pub const LABEL_SIM: &str = "io.rancher.sim";
/// Label on every container the simulator starts: its service's id.
pub const LABEL_SERVICE: &str = "io.rancher.sim.service";
/// Label on every container the simulator starts: its instance's id.
pub const LABEL_INSTANCE: &str = "io.rancher.sim.instance";

/// How the simulator misbehaves (for every service).
#[derive(Clone, Debug, Default)]
pub struct Misbehave {
    /// Length of each transition (activating, updating-active, upgrading, rolling-back...).
    pub transition_ms: u64,
    /// The next upgrade never leaves `upgrading`.
    pub stuck_upgrading: bool,
    /// Answer this many requests with 500 first.
    pub fail_requests: u32,
    /// Answer this many actions with 422 ActionNotAvailable (a state change raced them).
    pub refuse_actions: u32,
}

/// A service as a test sees it (see [`RancherSim::service_named`]).
#[derive(Clone, Debug)]
pub struct SimService {
    pub id: String,
    pub state: String,
    pub scale: u32,
    /// The service's `healthState`.
    pub health: String,
    /// The current `launchConfig`.
    pub launch: Value,
    /// Its instances that are not removed (the current ones, and during an upgrade the
    /// previous ones, stopped and kept for a rollback), oldest first.
    pub instances: Vec<SimInstance>,
}

/// An instance (container) of a service as a test sees it.
#[derive(Clone, Debug)]
pub struct SimInstance {
    pub id: String,
    /// The Docker host URL it runs on.
    pub host: String,
    /// The Docker container's name.
    pub container: String,
    pub state: String,
    /// The instance's `healthState`; empty when Rancher reports none (no `healthCheck`).
    pub health: String,
}

pub struct RancherSim {
    pub url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    monitor: tokio::task::JoinHandle<()>,
}

impl Drop for RancherSim {
    fn drop(&mut self) {
        self.server.abort();
        self.monitor.abort();
    }
}

impl RancherSim {
    /// Stack `ferry` (`1st1`) with service `web` ([`SERVICE`]) already `active`: one
    /// instance of `image` running `command` with host networking on `docker_host`. The
    /// hosts API lists that host (`1h1`, `sim-host-1`, 127.0.0.1, active) and a
    /// disconnected one (`1h2`) that runs nothing.
    pub async fn start(
        docker_host: &str,
        image: &str,
        command: Vec<String>,
        misbehave: Misbehave,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hosts = vec![
            Host {
                id: "1h1".into(),
                hostname: "sim-host-1".into(),
                agent_ip: "127.0.0.1".into(),
                state: "active".into(),
                docker: Some(docker_host.to_owned()),
            },
            Host {
                id: "1h2".into(),
                hostname: "sim-host-2".into(),
                agent_ip: "127.0.0.2".into(),
                state: "disconnected".into(),
                docker: None,
            },
        ];
        let sim = Self::serve(listener, hosts, misbehave)?;
        {
            let mut s = lock(&sim.shared);
            let now = now_ms();
            s.stacks.push(Stack {
                id: STACK.into(),
                uuid: uuid::Uuid::new_v4().to_string(),
                name: "ferry".into(),
                description: Value::Null,
                state: "active".into(),
                start_on_create: true,
                created: now,
                removed: None,
            });
            s.services.push(Service {
                id: SERVICE.into(),
                uuid: uuid::Uuid::new_v4().to_string(),
                name: "web".into(),
                stack: STACK.into(),
                description: Value::Null,
                state: "active".into(),
                scale: 1,
                launch: legacy_launch(image, command),
                previous: None,
                start_on_create: true,
                current: vec![],
                kept: vec![],
                created: now,
                removed: None,
                ops: Arc::default(),
            });
        }
        let shared = sim.shared.clone();
        let started =
            tokio::task::spawn_blocking(move || launch_instance(&shared, SERVICE, None)).await?;
        if let Some(message) = started.and_then(|id| failed(&sim.shared, &id)) {
            sim.cleanup();
            anyhow::bail!("starting the service's container: {message}");
        }
        Ok(sim)
    }

    /// An environment with no stacks or services, and one active host per Docker host
    /// (`1h1`, `1h2`... named `sim-host-<n>`, agent IP 127.0.0.1). Call it inside a Tokio
    /// runtime.
    pub fn empty(docker_hosts: &[String], misbehave: Misbehave) -> anyhow::Result<RancherSim> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let hosts = docker_hosts
            .iter()
            .enumerate()
            .map(|(i, d)| Host {
                id: format!("1h{}", i + 1),
                hostname: format!("sim-host-{}", i + 1),
                agent_ip: "127.0.0.1".into(),
                state: "active".into(),
                docker: Some(d.clone()),
            })
            .collect();
        Self::serve(listener, hosts, misbehave)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        hosts: Vec<Host>,
        misbehave: Misbehave,
    ) -> anyhow::Result<Self> {
        let addr: SocketAddr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let shared = Arc::new(Mutex::new(Sim {
            tag: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            base: url.clone(),
            hosts,
            stacks: vec![],
            services: vec![],
            instances: vec![],
            next_stack: 2,
            next_service: 13,
            next_instance: 20,
            next_ip: 0,
            misbehave,
            requests: vec![],
            closed: false,
        }));
        let app = api::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let monitor = tokio::spawn(health::monitor(shared.clone()));
        Ok(Self {
            url,
            shared,
            server,
            monitor,
        })
    }

    /// Put [`SERVICE`] in `upgraded` with `image` as the new launchConfig, as a run that
    /// timed out would leave it.
    pub fn leave_upgraded(&self, image: &str, command: Vec<String>) -> anyhow::Result<()> {
        let ops = lock(&self.shared)
            .service(SERVICE)
            .map(|s| s.ops.clone())
            .ok_or_else(|| anyhow::anyhow!("no service {SERVICE}"))?;
        let _serial = ops.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut sim = lock(&self.shared);
            let s = sim.service_mut(SERVICE).expect("checked above");
            s.previous = Some(std::mem::replace(
                &mut s.launch,
                legacy_launch(image, command),
            ));
            s.state = "upgrading".into();
        }
        upgrade_instances(&self.shared, SERVICE, false, true);
        let mut sim = lock(&self.shared);
        let new = sim.service(SERVICE).map(|s| s.current.clone());
        if let Some(s) = sim.service_mut(SERVICE) {
            s.state = "upgraded".into();
        }
        let errors: Vec<String> = new
            .unwrap_or_default()
            .iter()
            .filter_map(|id| sim.instance(id))
            .filter_map(|i| i.message.clone())
            .collect();
        anyhow::ensure!(errors.is_empty(), "starting the new container: {errors:?}");
        Ok(())
    }

    /// [`SERVICE`]'s state ("" when there is none).
    pub fn state(&self) -> String {
        lock(&self.shared)
            .service(SERVICE)
            .map(|s| s.state.clone())
            .unwrap_or_default()
    }

    /// [`SERVICE`]'s `launchConfig.imageUuid` ("" when there is none).
    pub fn image(&self) -> String {
        lock(&self.shared)
            .service(SERVICE)
            .and_then(|s| s.launch["imageUuid"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn set_misbehave(&self, m: Misbehave) {
        lock(&self.shared).misbehave = m;
    }

    /// The stacks that are not removed: (id, name), oldest first.
    pub fn stacks(&self) -> Vec<(String, String)> {
        lock(&self.shared)
            .stacks
            .iter()
            .filter(|s| s.removed.is_none())
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect()
    }

    /// The service `name` of the stack named `stack` (neither removed).
    pub fn service_named(&self, stack: &str, name: &str) -> Option<SimService> {
        let sim = lock(&self.shared);
        let stack = sim.stack_named(stack)?.id.clone();
        let s = sim.services.iter().find(|s| {
            s.stack == stack && s.removed.is_none() && s.name.eq_ignore_ascii_case(name)
        })?;
        Some(sim.sim_service(s))
    }

    /// The service with this id, removed or not.
    pub fn service(&self, id: &str) -> Option<SimService> {
        let sim = lock(&self.shared);
        sim.service(id).map(|s| sim.sim_service(s))
    }

    /// This simulator's id: the value of [`LABEL_SIM`] on every container it starts.
    pub fn tag(&self) -> String {
        lock(&self.shared).tag.clone()
    }

    /// Every request received so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.shared).requests.clone()
    }

    /// Remove every container the simulator started, on every host; start no more.
    pub fn cleanup(&self) {
        let (by_host, hosts, tag) = {
            let mut sim = lock(&self.shared);
            sim.closed = true;
            let mut by_host: HashMap<String, Vec<String>> = HashMap::new();
            for i in sim.instances.iter().filter(|i| i.removed.is_none()) {
                if let Some(d) = &sim.hosts[i.host].docker {
                    by_host
                        .entry(d.clone())
                        .or_default()
                        .push(i.container.clone());
                }
            }
            let hosts: Vec<String> = sim.hosts.iter().filter_map(|h| h.docker.clone()).collect();
            let now = now_ms();
            for i in sim.instances.iter_mut().filter(|i| i.removed.is_none()) {
                i.state = "removed".into();
                i.removed = Some(now);
            }
            (by_host, hosts, sim.tag.clone())
        };
        for (host, containers) in by_host {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let _ = crate::docker(&host, None, &args);
        }
        // Whatever a background operation started meanwhile.
        let filter = format!("label={LABEL_SIM}={tag}");
        for host in hosts {
            if let Ok(ids) = crate::docker(&host, None, &["ps", "-aq", "--filter", &filter]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = crate::docker(&host, None, &args);
                }
            }
        }
    }
}

/// The launchConfig [`RancherSim::start`] and [`RancherSim::leave_upgraded`] give
/// [`SERVICE`]: `image` running `command` with host networking.
fn legacy_launch(image: &str, command: Vec<String>) -> Value {
    json!({ "imageUuid": format!("docker:{image}"), "command": command, "networkMode": "host", "labels": {} })
}

//! An instance's container, run by the docker CLI on its host's daemon: start, stop,
//! remove, scale and replace. These block: call them from blocking threads.

use super::state::{Checks, Instance, Shared, Sim, lock, now_ms};
use super::{LABEL_INSTANCE, LABEL_SERVICE, LABEL_SIM};
use serde_json::Value;
use std::time::Instant;

/// The labels Rancher puts on a service's containers.
pub(super) fn rancher_labels(sim: &Sim, i: &Instance) -> Vec<(String, String)> {
    let stack = sim.stack(&i.stack).map(|s| s.name.as_str()).unwrap_or("");
    let service = sim
        .service(&i.service)
        .map(|s| s.name.as_str())
        .unwrap_or("");
    vec![
        ("io.rancher.stack.name".into(), stack.to_owned()),
        (
            "io.rancher.stack_service.name".into(),
            format!("{stack}/{service}"),
        ),
        ("io.rancher.container.name".into(), i.name.clone()),
        ("io.rancher.container.uuid".into(), i.uuid.clone()),
    ]
}

/// The `docker run` arguments of an instance.
#[allow(clippy::too_many_arguments)]
fn run_args(
    tag: &str,
    service: &str,
    instance: &str,
    container: &str,
    labels: &[(String, String)],
    launch: &Value,
) -> Vec<String> {
    let network = match launch["networkMode"].as_str() {
        Some("host") => "host",
        _ => "none",
    };
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        container.into(),
        "--network".into(),
        network.into(),
        "--label".into(),
        format!("{LABEL_SIM}={tag}"),
        "--label".into(),
        format!("{LABEL_SERVICE}={service}"),
        "--label".into(),
        format!("{LABEL_INSTANCE}={instance}"),
    ];
    for (k, v) in labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    for (k, v) in launch["labels"].as_object().into_iter().flatten() {
        args.push("--label".into());
        args.push(format!("{k}={}", plain(v)));
    }
    for (k, v) in launch["environment"].as_object().into_iter().flatten() {
        args.push("-e".into());
        args.push(format!("{k}={}", plain(v)));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(plain)
            .collect::<Vec<_>>()
    };
    let entry = strings(&launch["entryPoint"]);
    if let Some(first) = entry.first() {
        args.push("--entrypoint".into());
        args.push(first.clone());
    }
    args.push(
        launch["imageUuid"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("docker:")
            .to_owned(),
    );
    args.extend(entry.into_iter().skip(1));
    args.extend(strings(&launch["command"]));
    args
}

/// A JSON value as a plain string (strings without quotes).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn has_check(launch: &Value) -> bool {
    launch["healthCheck"].is_object()
}

impl Instance {
    /// The container (re)started: `running`, and health checks start over.
    fn mark_running(&mut self) {
        let now = now_ms();
        self.state = "running".into();
        self.message = None;
        self.start_count += 1;
        self.first_running.get_or_insert(now);
        self.health = has_check(&self.launch).then(|| {
            if self.health.as_deref() == Some("healthy") {
                "reinitializing".to_owned()
            } else {
                "initializing".to_owned()
            }
        });
        let at = Instant::now();
        self.checks.successes = 0;
        self.checks.failures = 0;
        self.checks.since = at;
        self.checks.next = at;
    }
}

/// Start a new instance of the service's current launchConfig (as number `index`, or the
/// lowest free one) on the least loaded host. Its id, or `None` when there is no host,
/// service, or the simulator is closed.
pub(super) fn launch_instance(shared: &Shared, sid: &str, index: Option<u32>) -> Option<String> {
    let (docker, args, id, container) = {
        let mut guard = lock(shared);
        let sim = &mut *guard;
        if sim.closed {
            return None;
        }
        let host = sim.pick_host()?;
        let svc = sim.service(sid)?;
        let launch = svc.launch.clone();
        let stack = svc.stack.clone();
        let stack_name = sim
            .stack(&stack)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let used: Vec<u32> = sim.instances_of(svc).map(|i| i.index).collect();
        let index = index.unwrap_or_else(|| (1..).find(|n| !used.contains(n)).unwrap_or(1));
        let name = format!("{stack_name}-{}-{index}", svc.name);
        let id = format!("1i{}", sim.next_instance);
        sim.next_instance += 1;
        let container = format!("rsim-{}-{id}", sim.tag);
        let ip = if launch["networkMode"] == "host" {
            sim.hosts[host].agent_ip.clone()
        } else {
            sim.next_ip += 1;
            format!("10.42.{}.{}", sim.next_ip / 250, sim.next_ip % 250 + 2)
        };
        let now = Instant::now();
        let instance = Instance {
            id: id.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            name,
            service: sid.to_owned(),
            stack,
            index,
            host,
            container: container.clone(),
            external_id: String::new(),
            state: "starting".into(),
            health: None,
            launch: launch.clone(),
            ip,
            message: None,
            created: now_ms(),
            first_running: None,
            removed: None,
            start_count: 0,
            checks: Checks {
                successes: 0,
                failures: 0,
                since: now,
                next: now,
                busybox: false,
            },
        };
        let labels = rancher_labels(sim, &instance);
        let args = run_args(&sim.tag, sid, &id, &container, &labels, &launch);
        sim.instances.push(instance);
        sim.service_mut(sid)?.current.push(id.clone());
        (sim.hosts[host].docker.clone()?, args, id, container)
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = crate::docker(&docker, None, &refs);
    let mut sim = lock(shared);
    let closed = sim.closed;
    if let Some(i) = sim.instance_mut(&id) {
        match out {
            Ok(external) => {
                i.external_id = external;
                i.mark_running();
            }
            Err(e) => {
                i.state = "error".into();
                i.message = Some(e.to_string());
            }
        }
    }
    drop(sim);
    if closed {
        let _ = crate::docker(&docker, None, &["rm", "-f", &container]);
    }
    Some(id)
}

/// Where an instance's container is: (docker host, container name).
fn locate(sim: &Sim, id: &str) -> Option<(String, String)> {
    let i = sim.instance(id)?;
    Some((sim.hosts[i.host].docker.clone()?, i.container.clone()))
}

/// Stop an instance's container (`stopped`), or remove it (`removed`).
pub(super) fn stop_instance(shared: &Shared, id: &str, remove: bool) {
    let Some((docker, container)) = ({
        let mut sim = lock(shared);
        let at = locate(&sim, id);
        match sim.instance_mut(id) {
            Some(i) if i.removed.is_none() => {
                i.state = if remove { "removing" } else { "stopping" }.into();
                at
            }
            _ => None,
        }
    }) else {
        return;
    };
    let _ = if remove {
        crate::docker(&docker, None, &["rm", "-f", &container])
    } else {
        crate::docker(&docker, None, &["stop", "-t", "1", &container])
    };
    let mut sim = lock(shared);
    if let Some(i) = sim.instance_mut(id) {
        if remove {
            i.state = "removed".into();
            i.removed = Some(now_ms());
        } else {
            i.state = "stopped".into();
        }
    }
}

/// `docker start` (or `restart`) an instance's container.
pub(super) fn start_instance(shared: &Shared, id: &str, restart: bool) {
    let Some((docker, container)) = ({
        let mut sim = lock(shared);
        let at = locate(&sim, id);
        let closed = sim.closed;
        match sim.instance_mut(id) {
            Some(i) if i.removed.is_none() && !closed => {
                i.state = if restart { "restarting" } else { "starting" }.into();
                at
            }
            _ => None,
        }
    }) else {
        return;
    };
    let out = if restart {
        crate::docker(&docker, None, &["restart", "-t", "1", &container])
    } else {
        crate::docker(&docker, None, &["start", &container])
    };
    let mut sim = lock(shared);
    if let Some(i) = sim.instance_mut(id) {
        match out {
            Ok(_) => i.mark_running(),
            Err(e) => {
                i.state = "error".into();
                i.message = Some(e.to_string());
            }
        }
    }
}

/// The service's current instances that are not removed, oldest first.
pub(super) fn current_of(shared: &Shared, sid: &str) -> Vec<(String, String)> {
    let sim = lock(shared);
    sim.service(sid)
        .map(|s| {
            s.current
                .iter()
                .filter_map(|id| sim.instance(id))
                .filter(|i| i.removed.is_none())
                .map(|i| (i.id.clone(), i.state.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Start or remove instances until the service has `scale` of them (removing the newest
/// first).
pub(super) fn ensure_scale(shared: &Shared, sid: &str) {
    loop {
        let want = match lock(shared).service(sid) {
            Some(s) => s.scale as usize,
            None => return,
        };
        let have = current_of(shared, sid);
        if have.len() < want {
            if launch_instance(shared, sid, None).is_none() {
                return;
            }
        } else if have.len() > want {
            let (newest, _) = have.last().expect("more than wanted");
            stop_instance(shared, newest, true);
        } else {
            return;
        }
    }
}

/// Upgrade in service: each running instance is replaced by one of the current
/// launchConfig (stop the old first, or start the new first); the old ones are kept,
/// stopped, for a rollback.
pub(super) fn upgrade_instances(shared: &Shared, sid: &str, start_first: bool, was_active: bool) {
    let old: Vec<String> = {
        let mut guard = lock(shared);
        let sim = &mut *guard;
        let live: Vec<String> = sim
            .service(sid)
            .map(|s| {
                s.current
                    .iter()
                    .filter(|id| sim.instance(id).is_some_and(|i| i.removed.is_none()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(s) = sim.service_mut(sid) {
            s.current.clear();
            s.kept.extend(live.iter().cloned());
        }
        live
    };
    for id in old {
        let (running, index) = match lock(shared).instance(&id) {
            Some(i) => (i.state == "running", i.index),
            None => continue,
        };
        if !running {
            continue;
        }
        if !start_first {
            stop_instance(shared, &id, false);
        }
        launch_instance(shared, sid, Some(index));
        if start_first {
            stop_instance(shared, &id, false);
        }
    }
    if was_active {
        ensure_scale(shared, sid);
    }
}

/// The instance's error message, if Docker refused to run it.
pub(super) fn failed(shared: &Shared, id: &str) -> Option<String> {
    let sim = lock(shared);
    sim.instance(id)
        .filter(|i| i.state == "error")
        .map(|i| i.message.clone().unwrap_or_default())
}

//! The `docker` target: a rolling update over plain Docker hosts, one host at a time.
//! On each host the new container starts on the free blue/green port, must pass its
//! health check, and only then is the old one stopped and kept (renamed `-retired`) so
//! a rollback is instant. Nothing is stopped before the new container is healthy; if a
//! host fails, the hosts already switched are switched back.

use crate::ordering::{LABEL_ORDER, mark_of};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use ferry_shared::config::ContainerConfig;
use ferry_shared::event::HostTiming;
use ferry_shared::order::{OrderMark, RunOrder, next_mark};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

pub const LABEL_PROJECT: &str = "io.ferry.project";
pub const LABEL_ENVIRONMENT: &str = "io.ferry.environment";
pub const LABEL_REVISION: &str = "io.ferry.revision";
pub const LABEL_IMAGE: &str = "io.ferry.image";
pub const LABEL_RUN: &str = "io.ferry.run-id";
pub const LABEL_PORT: &str = "io.ferry.port";
/// Which of the host's replicas (0-based) a container is.
pub const LABEL_REPLICA: &str = "io.ferry.replica";
/// What ran before this container: where "roll back to the previous" goes.
pub const LABEL_PREVIOUS_IMAGE: &str = "io.ferry.previous-image";
pub const LABEL_PREVIOUS_REVISION: &str = "io.ferry.previous-revision";

/// What one deploy asks for.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub image: &'a str,
    pub revision: &'a str,
    pub run_id: Uuid,
    /// The run's place; none for a run started by an older Ferry.
    pub order: Option<&'a RunOrder>,
    /// An operator's explicit deploy: its place becomes the mark (see `next_mark`).
    pub resets_mark: bool,
    pub container: &'a ContainerConfig,
    /// Which replica on each host (set per replica by `deploy`).
    pub replica: u32,
}

impl Target<'_> {
    /// The blue/green ports of this replica: its pair in `container.ports`.
    fn slot_ports(&self) -> &[u16] {
        let i = self.replica as usize * 2;
        self.container
            .ports
            .get(i..i + 2)
            .unwrap_or(&self.container.ports)
    }
}

/// A container Ferry runs, as read back from its labels.
#[derive(Clone, Debug)]
pub struct Running {
    pub id: String,
    pub image: String,
    pub revision: String,
    pub run_id: Option<Uuid>,
    /// The environment's newest place deployed (label `io.ferry.order`).
    pub order: Option<OrderMark>,
    pub port: u16,
    pub replica: u32,
    pub previous_image: Option<String>,
    pub previous_revision: Option<String>,
}

pub enum Outcome {
    Succeeded {
        /// The image (and revision) that ran before, if any.
        previous_image: Option<String>,
        previous_revision: Option<String>,
        hosts: Vec<HostTiming>,
    },
    Failed {
        reason: String,
    },
    /// A newer run is what runs now.
    Superseded {
        running: Running,
    },
}

pub struct Host {
    pub name: String,
    /// How it is reached (URL, TLS certificates, SSH key) and where its containers answer.
    pub config: ferry_shared::config::DockerHostConfig,
}

/// The running container of this project and environment on a host (the newest, if an
/// interrupted switch left two), if any.
pub async fn running(
    docker: &Docker,
    project: &str,
    environment: &str,
) -> Result<Option<Running>, String> {
    Ok(running_all(docker, project, environment)
        .await?
        .into_iter()
        .next())
}

/// Every running container of this project and environment on a host, newest first.
pub async fn running_all(
    docker: &Docker,
    project: &str,
    environment: &str,
) -> Result<Vec<Running>, String> {
    let filters = HashMap::from([
        (
            "label",
            vec![
                format!("{LABEL_PROJECT}={project}"),
                format!("{LABEL_ENVIRONMENT}={environment}"),
            ],
        ),
        ("status", vec!["running".to_owned()]),
    ]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let mut list = list;
    list.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or_default()));
    Ok(list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            Running {
                id: c.id.unwrap_or_default(),
                image: labels.get(LABEL_IMAGE).cloned().unwrap_or_default(),
                revision: labels.get(LABEL_REVISION).cloned().unwrap_or_default(),
                run_id: labels.get(LABEL_RUN).and_then(|r| Uuid::parse_str(r).ok()),
                order: mark_of(labels.get(LABEL_ORDER).map(String::as_str)),
                port: labels
                    .get(LABEL_PORT)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_default(),
                replica: labels
                    .get(LABEL_REPLICA)
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_default(),
                previous_image: labels.get(LABEL_PREVIOUS_IMAGE).cloned(),
                previous_revision: labels.get(LABEL_PREVIOUS_REVISION).cloned(),
            }
        })
        .collect())
}

pub async fn deploy(hosts: &[Host], t: &Target<'_>, rollback: bool) -> Result<Outcome, String> {
    let mut switched: Vec<(Docker, Option<Running>, String)> = Vec::new();
    let mut timings = Vec::new();
    let mut previous_image = None;
    let mut previous_revision = None;
    let replicas = t.container.replicas.max(1);
    for (host, replica) in hosts
        .iter()
        .flat_map(|h| (0..replicas).map(move |r| (h, r)))
    {
        let t = &Target { replica, ..*t };
        let label = if replicas > 1 {
            format!("{}/r{replica}", host.name)
        } else {
            host.name.clone()
        };
        let started = Instant::now();
        let docker = ferry_shared::docker::connect_host(&host.config)
            .await
            .map_err(|e| e.to_string())?;
        let all: Vec<Running> = running_all(&docker, t.project, t.environment)
            .await?
            .into_iter()
            .filter(|r| r.replica == replica)
            .collect();
        // More than one running: a switch was interrupted (the updater killed between
        // starting the new container and retiring the old one). Finish it first, so a
        // leftover neither keeps serving nor holds the port the new container needs.
        let (mut mine, others): (Vec<Running>, Vec<Running>) =
            all.into_iter().partition(|r| r.image == t.image);
        // Next to the old one, a container of this image was never confirmed healthy
        // (the switch stopped during its check): check it now, or start afresh.
        if let (Some(leftover), Some(_)) = (mine.first(), others.first())
            && let Err(why) = verify(&docker, host, t, &leftover.id, leftover.port).await
        {
            tracing::warn!(container = %leftover.id, "a container an interrupted deploy left is unhealthy ({why}); starting a new one");
            let force = RemoveContainerOptionsBuilder::default().force(true).build();
            for c in mine.drain(..) {
                let _ = docker.remove_container(&c.id, Some(force.clone())).await;
            }
        }
        if !mine.is_empty() {
            let extra: Vec<Running> = mine.iter().skip(1).chain(&others).cloned().collect();
            retire_all(&docker, t, &extra).await;
        } else if others.len() > 1 {
            retire_all(&docker, t, &others[1..]).await;
        }
        let old = mine.first().or(others.first()).cloned();
        if let Some(old) = &old {
            if old.image == t.image {
                timings.push(HostTiming {
                    host: label,
                    millis: 0,
                    outcome: "already running".into(),
                });
                continue;
            }
            if !rollback
                && t.order
                    .is_some_and(|o| o.is_behind(old.order.as_ref(), &old.revision, t.revision))
            {
                undo(&switched).await;
                return Ok(Outcome::Superseded {
                    running: old.clone(),
                });
            }
            previous_image.get_or_insert_with(|| old.image.clone());
            previous_revision.get_or_insert_with(|| old.revision.clone());
        }
        match switch_host(&docker, host, t, old.as_ref()).await {
            Ok(new_name) => {
                timings.push(HostTiming {
                    host: label,
                    millis: started.elapsed().as_millis() as u64,
                    outcome: "updated".into(),
                });
                switched.push((docker, old, new_name));
            }
            Err(why) => {
                undo(&switched).await;
                return Ok(Outcome::Failed {
                    reason: format!("host {label}: {why}; the previous version keeps serving"),
                });
            }
        }
    }
    Ok(Outcome::Succeeded {
        previous_image,
        previous_revision,
        hosts: timings,
    })
}

fn names(t: &Target<'_>) -> (String, String) {
    let base = format!("ferry-{}-{}", t.project, t.environment);
    let replica = match t.replica {
        0 => String::new(),
        r => format!("-r{r}"),
    };
    (
        format!("{base}-{}{replica}", &t.run_id.simple().to_string()[..12]),
        format!("{base}-retired{replica}"),
    )
}

/// Start the new container next to the old one, check it, then retire the old one.
async fn switch_host(
    docker: &Docker,
    host: &Host,
    t: &Target<'_>,
    old: Option<&Running>,
) -> Result<String, String> {
    let ports = t.slot_ports();
    let port = ports
        .iter()
        .copied()
        .find(|p| Some(*p) != old.map(|o| o.port))
        .unwrap_or(ports[0]);
    let (name, _) = names(t);
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    // A container of this very run left by an earlier, interrupted attempt.
    let _ = docker.remove_container(&name, Some(force.clone())).await;
    let mut env: Vec<String> = t
        .container
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();
    let host_network = t.container.network == "host";
    let inside = inside_port(t.container, port);
    env.push(format!("PORT={inside}"));
    let mut labels = HashMap::from([
        (LABEL_PROJECT.to_owned(), t.project.to_owned()),
        (LABEL_ENVIRONMENT.to_owned(), t.environment.to_owned()),
        (LABEL_REVISION.to_owned(), t.revision.to_owned()),
        (LABEL_IMAGE.to_owned(), t.image.to_owned()),
        (LABEL_RUN.to_owned(), t.run_id.to_string()),
        (LABEL_PORT.to_owned(), port.to_string()),
        (LABEL_REPLICA.to_owned(), t.replica.to_string()),
    ]);
    if let Some(mark) = next_mark(old.and_then(|o| o.order), t.order, t.resets_mark) {
        labels.insert(LABEL_ORDER.to_owned(), mark.to_string());
    }
    if let Some(old) = old {
        labels.insert(LABEL_PREVIOUS_IMAGE.to_owned(), old.image.clone());
        labels.insert(LABEL_PREVIOUS_REVISION.to_owned(), old.revision.clone());
    }
    let cmd = (!t.container.command.is_empty()).then(|| {
        t.container
            .command
            .iter()
            .map(|c| c.replace("{port}", &inside.to_string()))
            .collect()
    });
    let published = format!("{inside}/tcp");
    let port_bindings = (!host_network).then(|| {
        HashMap::from([(
            published.clone(),
            Some(vec![bollard::models::PortBinding {
                host_ip: Some(t.container.publish_address.clone()),
                host_port: Some(port.to_string()),
            }]),
        )])
    });
    let body = ContainerCreateBody {
        image: Some(t.image.to_owned()),
        env: Some(env),
        cmd,
        labels: Some(labels),
        exposed_ports: (!host_network).then(|| vec![published.clone()]),
        host_config: Some(HostConfig {
            network_mode: Some(t.container.network.clone()),
            port_bindings,
            init: Some(t.container.init),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| format!("cannot create the container (is the image on the host?): {e}"))?;
    if let Err(e) = docker.start_container(&name, None).await {
        let _ = docker.remove_container(&name, Some(force.clone())).await;
        return Err(format!("the new container did not start: {e}"));
    }
    if let Err(why) = verify(docker, host, t, &name, port).await {
        let _ = docker.remove_container(&name, Some(force)).await;
        return Err(format!("the new container {why}"));
    }
    if let Some(old) = old {
        retire(docker, t, &old.id).await;
    }
    Ok(name)
}

/// The port the app listens on inside its container for slot `port`: on the host's
/// network the slot itself; on another network `container_port`, which Docker publishes
/// on the slot.
fn inside_port(c: &ContainerConfig, port: u16) -> u16 {
    match c.network.as_str() {
        "host" => port,
        _ => c.container_port.unwrap_or(port),
    }
}

/// Whether container `id`, serving on slot `port`, is healthy and itself up (something
/// else on the port could have answered for it), never restarted. The reason completes
/// "the new container ...".
async fn verify(
    docker: &Docker,
    host: &Host,
    t: &Target<'_>,
    id: &str,
    port: u16,
) -> Result<(), String> {
    let inside = inside_port(t.container, port);
    let address = host.config.address();
    if let Err(why) = healthy(docker, id, &address, (port, inside), t.container).await {
        return Err(format!("is unhealthy: {why}"));
    }
    let state = docker
        .inspect_container(id, None)
        .await
        .ok()
        .map(|i| (i.state.and_then(|s| s.running), i.restart_count));
    if state != Some((Some(true), Some(0))) {
        return Err(format!(
            "did not stay up on port {port} (is something else listening there?)"
        ));
    }
    Ok(())
}

/// Stop leftovers of an interrupted switch: the newest is kept as the retired one (what
/// a rollback would start), the rest are removed.
async fn retire_all(docker: &Docker, t: &Target<'_>, extra: &[Running]) {
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    for (i, c) in extra.iter().enumerate() {
        tracing::warn!(container = %c.id, revision = %c.revision, "retiring a container an interrupted deploy left running");
        if i == 0 {
            retire(docker, t, &c.id).await;
        } else {
            let _ = docker.remove_container(&c.id, Some(force.clone())).await;
        }
    }
}

/// Stop container `id` and keep it as the one retired container (what a rollback would
/// start), replacing the one kept before.
async fn retire(docker: &Docker, t: &Target<'_>, id: &str) {
    let (_, retired) = names(t);
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&retired, Some(force)).await;
    let stop = StopContainerOptionsBuilder::default()
        .t(t.container.stop_timeout_secs.min(i32::MAX as u64) as i32)
        .build();
    let _ = docker.stop_container(id, Some(stop)).await;
    let rename = RenameContainerOptionsBuilder::default()
        .name(&retired)
        .build();
    let _ = docker.rename_container(id, rename).await;
}

/// Switch hosts back: restart what was retired, remove what was started.
async fn undo(switched: &[(Docker, Option<Running>, String)]) {
    for (docker, old, new_name) in switched {
        if let Some(old) = old {
            let _ = docker.start_container(&old.id, None).await;
        }
        let force = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = docker.remove_container(new_name, Some(force)).await;
    }
}

/// Poll `http://address:port<health_path>` (or the health command, which sees the port
/// inside the container) until it answers 2xx, the container exits, or the deadline
/// passes.
async fn healthy(
    docker: &Docker,
    name: &str,
    address: &str,
    (port, inside): (u16, u16),
    c: &ContainerConfig,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(c.health_timeout_secs);
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if c.health_command.is_empty() {
            match http_status(address, port, &c.health_path).await {
                Ok(s) if (200..300).contains(&s) => return Ok(()),
                Ok(s) => last = format!("GET {} answered {s}", c.health_path),
                Err(e) => last = e,
            }
        } else {
            match exec_status(docker, name, &c.health_command, inside).await {
                Ok(0) => return Ok(()),
                Ok(code) => last = format!("the health command exited with {code}"),
                Err(e) => last = e,
            }
        }
        let state = docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|i| i.state);
        if state.as_ref().and_then(|s| s.running) == Some(false) {
            let code = state.and_then(|s| s.exit_code).unwrap_or_default();
            return Err(format!("it exited with code {code}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{last} after {} s", c.health_timeout_secs))
}

/// Run the health command in the container; its exit code.
async fn exec_status(
    docker: &Docker,
    name: &str,
    command: &[String],
    port: u16,
) -> Result<i64, String> {
    use bollard::exec::{CreateExecOptions, StartExecOptions};
    let cmd: Vec<String> = command
        .iter()
        .map(|c| c.replace("{port}", &port.to_string()))
        .collect();
    let exec = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(false),
                attach_stderr: Some(false),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot run the health command: {e}"))?;
    docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| format!("cannot run the health command: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let state = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| e.to_string())?;
        if state.running != Some(true) {
            return state
                .exit_code
                .ok_or_else(|| "the health command reported no exit code".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the health command did not finish within 10 s".into())
}

async fn http_status(address: &str, port: u16, path: &str) -> Result<u16, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect((address, port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = vec![0; 64];
        let n = s.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not HTTP: {head:?}"))
}

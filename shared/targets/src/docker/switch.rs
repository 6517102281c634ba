//! The switch on one host (replica): start the new container on the free blue/green
//! port next to the old one, check it, and only then retire the old one.

use super::names::inside_port;
use super::proxy::{Proxy, Shift, backend, server, shift};
use super::retire::{force, retire, retired};
use super::verify::verify;
use super::{Host, Spec};
use crate::error::SwitchError;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RenameContainerOptionsBuilder};
use ferry_docker::labels::{Deployed, LABEL_ENVIRONMENT, LABEL_PORT, LABEL_PROJECT, LABEL_REPLICA};
use ferry_docker::{Docker, Running};
use ferry_shared::order::next_mark;
use std::collections::HashMap;

/// The new container's name and port, once it serves and `old` is retired.
pub(super) async fn switch_host(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    old: Option<&Running>,
) -> Result<(String, u16), SwitchError> {
    let port = t.free_port(old.map(|o| o.port));
    let deployed = Deployed {
        image: t.image,
        revision: t.revision,
        run_id: t.run_id,
        mark: next_mark(old.and_then(|o| o.order), t.order, t.resets_mark),
        previous: old.map(|o| (o.image.as_str(), o.revision.as_str())),
    };
    let t0 = std::time::Instant::now();
    let name = start(docker, host, t, port, &deployed).await?;
    let healthy = t0.elapsed().as_millis() as u64;
    if let Err(e) = through_proxy(docker, host, t, port, old.map(|o| o.port)).await {
        let _ = docker.remove_container(&name, force()).await;
        return Err(e);
    }
    if let Some(old) = old {
        retire(docker, t, &old.id).await;
    }
    tracing::info!(container = %name, healthy_ms = healthy, retired_ms = t0.elapsed().as_millis() as u64, "switched");
    Ok((name, port))
}

/// A rollback to the release this replica ran before, while its retired container is
/// still there: that container starts again on its own slot (no pull, no new container),
/// is checked like a new one, takes the traffic back, and the one it replaces is retired
/// in its place. `None` when there is no such container: the rollback starts a new one.
pub(super) async fn restart_retired(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    old: Option<&Running>,
) -> Option<Result<(String, u16), SwitchError>> {
    let port = t.free_port(old.map(|o| o.port));
    let back = retired(docker, t)
        .await
        .filter(|r| r.image == t.image && r.port == port)?;
    let t0 = std::time::Instant::now();
    // Under this run's name: it is what the run put there, and a redelivered run that
    // finds it half-started removes it like any leftover of its own (see `start`).
    let (name, _) = t.names();
    let _ = docker.remove_container(&name, force()).await;
    let rename = RenameContainerOptionsBuilder::default().name(&name).build();
    let restarted = async {
        docker
            .rename_container(&back.id, rename)
            .await
            .map_err(SwitchError::Start)?;
        docker
            .start_container(&name, None)
            .await
            .map_err(SwitchError::Start)?;
        verify(docker, host, t, &name, port).await?;
        through_proxy(docker, host, t, port, old.map(|o| o.port)).await
    };
    if let Err(e) = restarted.await {
        return Some(Err(e));
    }
    if let Some(old) = old {
        retire(docker, t, &old.id).await;
    }
    tracing::info!(container = %name, revision = %back.revision, restarted_ms = t0.elapsed().as_millis() as u64, "rolled back to the retired container");
    Some(Ok((name, port)))
}

/// Start the new container next to `old` (a canary: both serve), on the free slot and
/// recorded like a switch; its name and port once it passes Ferry's health check.
pub(super) async fn start_beside(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    old: &Running,
) -> Result<(String, u16), SwitchError> {
    let port = t.free_port(Some(old.port));
    let deployed = Deployed {
        image: t.image,
        revision: t.revision,
        run_id: t.run_id,
        mark: next_mark(old.order, t.order, t.resets_mark),
        previous: Some((old.image.as_str(), old.revision.as_str())),
    };
    Ok((start(docker, host, t, port, &deployed).await?, port))
}

/// One more replica (`t.replica`) of what `like` runs, recorded like it (`ferry scale`):
/// its name and port once it serves.
pub(super) async fn add_replica(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    like: &Running,
) -> Result<(String, u16), SwitchError> {
    let port = t.free_port(None);
    let deployed = Deployed {
        image: &like.image,
        revision: &like.revision,
        run_id: t.run_id,
        mark: like.order,
        previous: like
            .previous_image
            .as_deref()
            .map(|i| (i, like.previous_revision.as_deref().unwrap_or_default())),
    };
    let name = start(docker, host, t, port, &deployed).await?;
    if let Err(e) = through_proxy(docker, host, t, port, None).await {
        let _ = docker.remove_container(&name, force()).await;
        return Err(e);
    }
    Ok((name, port))
}

/// Where the proxy fronts the project: move the replica's traffic to the new slot and
/// drain the old one (nothing to do elsewhere: the old container simply stops).
async fn through_proxy(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    new_port: u16,
    old_port: Option<u16>,
) -> Result<(), SwitchError> {
    let Some(cfg) = t.proxied else {
        return Ok(());
    };
    let proxy = Proxy {
        docker,
        cfg,
        host: &host.name,
    };
    proxy.ensure().await?;
    let b = backend(t.project, t.environment);
    let s = Shift {
        backend: &b,
        new: server(t.replica, new_port),
        old: old_port.map(|p| server(t.replica, p)),
        check_timeout: std::time::Duration::from_secs(t.container.health_timeout_secs),
        drain_timeout: std::time::Duration::from_secs(cfg.proxy.drain_timeout_secs),
    };
    Ok(shift(&proxy, &s).await?)
}

/// Create and start the container of `t` on `port`, and see it healthy; removed again
/// if it is not.
async fn start(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    port: u16,
    deployed: &Deployed<'_>,
) -> Result<String, SwitchError> {
    let (name, _) = t.names();
    let t0 = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.elapsed().as_millis() as u64;
    // A container of this very run left by an earlier, interrupted attempt.
    let _ = docker.remove_container(&name, force()).await;
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body(t, port, deployed),
        )
        .await
        .map_err(SwitchError::Create)?;
    let created = ms(t0);
    if let Err(e) = docker.start_container(&name, None).await {
        let _ = docker.remove_container(&name, force()).await;
        return Err(SwitchError::Start(e));
    }
    let started = ms(t0);
    if let Err(why) = verify(docker, host, t, &name, port).await {
        let _ = docker.remove_container(&name, force()).await;
        return Err(why.into());
    }
    // Where a switch spends its time, for whoever tunes it (issue 19).
    tracing::info!(
        container = %name,
        created_ms = created,
        started_ms = started,
        healthy_ms = ms(t0),
        "started"
    );
    Ok(name)
}

/// The new container: the image, its environment and command with the slot's port, the
/// labels that record the deploy, and the port published on the slot.
fn body(t: &Spec<'_>, port: u16, deployed: &Deployed<'_>) -> ContainerCreateBody {
    let c = t.container;
    let inside = inside_port(c, port);
    let mut env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();
    env.push(format!("PORT={inside}"));
    let labels = [
        (LABEL_PROJECT, t.project.to_owned()),
        (LABEL_ENVIRONMENT, t.environment.to_owned()),
        (LABEL_PORT, port.to_string()),
        (LABEL_REPLICA, t.replica.to_string()),
    ]
    .into_iter()
    .chain(deployed.labels())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cmd = (!c.command.is_empty()).then(|| {
        c.command
            .iter()
            .map(|a| a.replace("{port}", &inside.to_string()))
            .collect()
    });
    let host_network = c.network == "host";
    let published = format!("{inside}/tcp");
    let port_bindings = (!host_network).then(|| {
        HashMap::from([(
            published.clone(),
            Some(vec![PortBinding {
                host_ip: Some(c.publish_address.clone()),
                host_port: Some(port.to_string()),
            }]),
        )])
    });
    ContainerCreateBody {
        image: Some(deployed.image.to_owned()),
        env: Some(env),
        cmd,
        labels: Some(labels),
        exposed_ports: (!host_network).then(|| vec![published]),
        host_config: Some(HostConfig {
            network_mode: Some(c.network.clone()),
            port_bindings,
            init: Some(c.init),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

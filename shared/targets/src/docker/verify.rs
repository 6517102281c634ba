//! Whether a container may serve: healthy (see `ferry_docker::health`), and itself up
//! without a restart (something else on the port could have answered for it).

use super::names::inside_port;
use super::{Host, Spec};
use crate::error::VerifyError;
use ferry_docker::Docker;
use ferry_docker::health::{Probe, wait_healthy};
use std::time::Duration;

/// Whether container `id`, serving on slot `port` of `host`, is fit to serve.
pub(super) async fn verify(
    docker: &Docker,
    host: &Host,
    t: &Spec<'_>,
    id: &str,
    port: u16,
) -> Result<(), VerifyError> {
    let c = t.container;
    let probe = Probe {
        path: &c.health_path,
        command: &c.health_command,
        timeout: Duration::from_secs(c.health_timeout_secs),
    };
    let address = host.config.address();
    wait_healthy(docker, id, (&address, port, inside_port(c, port)), &probe).await?;
    let state = docker
        .inspect_container(id, None)
        .await
        .ok()
        .map(|i| (i.state.and_then(|s| s.running), i.restart_count));
    if state != Some((Some(true), Some(0))) {
        return Err(VerifyError::DidNotStayUp(port));
    }
    Ok(())
}

impl super::DockerTarget<'_> {
    /// Whether `r` on `host` answers its health check now (`ferry status`): one quick
    /// probe, not the deploy's wait.
    pub(crate) async fn health_now(
        &self,
        docker: &Docker,
        host: &Host,
        r: &ferry_docker::Running,
    ) -> Result<(), String> {
        let c = &self.container;
        let probe = Probe {
            path: &c.health_path,
            command: &c.health_command,
            timeout: ferry_docker::health::PROBE_TIMEOUT,
        };
        let address = host.config.address();
        wait_healthy(
            docker,
            &r.id,
            (&address, r.port, inside_port(c, r.port)),
            &probe,
        )
        .await
        .map_err(|e| e.to_string())
    }
}

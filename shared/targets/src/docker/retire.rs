//! Taking containers out of service: the old one is stopped and kept (renamed
//! `-retired`) so a rollback is instant; a failed rolling update is undone host by host.

use super::Spec;
use super::proxy::{Proxy, bring_back};
use bollard::query_parameters::{
    RemoveContainerOptions, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use ferry_docker::{Docker, Running};
use ferry_shared::config::FerryConfig;

/// A replica switched to the new container, kept until the whole deploy succeeded.
pub(super) struct Switched {
    pub docker: Docker,
    /// What it ran before (now retired).
    pub old: Option<Running>,
    /// The new container's name.
    pub new_name: String,
    /// Where the proxy moved its traffic, to move it back.
    pub back: Option<Back>,
}

/// A replica's move in its host's proxy.
pub(super) struct Back {
    pub host: String,
    pub backend: String,
    pub new: String,
    pub old: Option<String>,
}

pub(super) fn force() -> Option<RemoveContainerOptions> {
    Some(RemoveContainerOptionsBuilder::default().force(true).build())
}

/// Stop leftovers of an interrupted switch: the newest is kept as the retired one (what
/// a rollback would start), the rest are removed.
pub(super) async fn retire_all(docker: &Docker, t: &Spec<'_>, extra: &[Running]) {
    for (i, c) in extra.iter().enumerate() {
        tracing::warn!(container = %c.id, revision = %c.revision, "retiring a container an interrupted deploy left running");
        if i == 0 {
            retire(docker, t, &c.id).await;
        } else {
            let _ = docker.remove_container(&c.id, force()).await;
        }
    }
}

/// Stop container `id` and keep it as the one retired container (what a rollback would
/// start), replacing the one kept before.
pub(super) async fn retire(docker: &Docker, t: &Spec<'_>, id: &str) {
    let (_, retired) = t.names();
    let stop = StopContainerOptionsBuilder::default()
        .t(t.container.stop_timeout_secs.min(i32::MAX as u64) as i32)
        .build();
    // The one kept before goes while this one stops: two containers, no order between.
    let _ = tokio::join!(
        docker.remove_container(&retired, force()),
        docker.stop_container(id, Some(stop))
    );
    let rename = RenameContainerOptionsBuilder::default()
        .name(&retired)
        .build();
    let _ = docker.rename_container(id, rename).await;
}

/// Switch hosts back: restart what was retired (and give it its traffic back in the
/// proxy), remove what was started.
pub(super) async fn undo(switched: &[Switched], cfg: &FerryConfig) {
    for s in switched {
        if let Some(old) = &s.old {
            let _ = s.docker.start_container(&old.id, None).await;
        }
        if let Some(b) = &s.back {
            let proxy = Proxy {
                docker: &s.docker,
                cfg,
                host: &b.host,
            };
            if let Err(e) = bring_back(&proxy, &b.backend, b.old.as_deref(), &b.new).await {
                tracing::warn!(host = %b.host, "the proxy could not be switched back: {e}");
            }
        }
        let _ = s.docker.remove_container(&s.new_name, force()).await;
    }
}

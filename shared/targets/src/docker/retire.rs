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
use ferry_shared::order::OrderMark;

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

/// The container retired from this replica (stopped, kept for a rollback), if any.
pub(super) async fn retired(docker: &Docker, t: &Spec<'_>) -> Option<Running> {
    let (_, name) = t.names();
    let c = docker.inspect_container(&name, None).await.ok()?;
    if c.state.and_then(|s| s.running) == Some(true) {
        return None;
    }
    let labels = c.config?.labels?;
    Some(Running::from_labels(c.id?, |k| {
        labels.get(k).map(String::as_str)
    }))
}

/// The mark the environment has reached, where `kept` runs and `retired` was retired.
///
/// A container's labels cannot change, so a rollback that started the retired container
/// again leaves the environment's mark (never lowered by a rollback) on the release it
/// took over from, now retired in its place. That one is not what `kept` replaced:
/// its mark counts. When it is (a deploy's usual chain), `kept` already recorded the
/// mark it reached from it, or an operator's `ferry deploy` reset it on purpose.
pub(super) fn reached(kept: &Running, retired: Option<&Running>) -> Option<OrderMark> {
    let Some(r) = retired.filter(|r| kept.previous_image.as_deref() != Some(&r.image)) else {
        return kept.order;
    };
    match (kept.order, r.order) {
        (Some(k), Some(r)) if k.scale == r.scale && r.value > k.value => Some(r),
        (None, r) => r,
        (k, _) => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::order::OrderScale;

    fn at(image: &str, previous: Option<&str>, place: Option<u64>) -> Running {
        Running {
            id: image.into(),
            image: image.into(),
            revision: image.into(),
            run_id: None,
            order: place.map(|value| OrderMark {
                scale: OrderScale::Git,
                value,
            }),
            port: 0,
            replica: 0,
            previous_image: previous.map(str::to_owned),
            previous_revision: None,
        }
    }

    fn place(m: Option<OrderMark>) -> Option<u64> {
        m.map(|m| m.value)
    }

    #[test]
    fn a_rollback_that_restarted_the_retired_container_keeps_the_place_reached() {
        // v1 started again by a rollback from v4: v4's place still counts.
        let v1 = at("v1", Some("v0"), Some(2));
        let v4 = at("v4", Some("v1"), Some(6));
        assert_eq!(place(reached(&v1, Some(&v4))), Some(6));
        // Nothing retired, or a lower place retired: the running one's.
        assert_eq!(place(reached(&v1, None)), Some(2));
        assert_eq!(place(reached(&v4, Some(&at("v0", None, Some(1))))), Some(6));
    }

    #[test]
    fn what_the_running_container_replaced_does_not_count_again() {
        // An operator's deploy of v1 over v4 reset the place to 2 on purpose.
        let v1 = at("v1", Some("v4"), Some(2));
        let v4 = at("v4", Some("v3"), Some(6));
        assert_eq!(place(reached(&v1, Some(&v4))), Some(2));
        // Another scale is not comparable: the running one's place stands.
        let mut svn = at("v9", None, Some(100));
        svn.order = Some(OrderMark {
            scale: OrderScale::Svn,
            value: 100,
        });
        assert_eq!(place(reached(&v1, Some(&svn))), Some(2));
        // No place recorded on the running one (an older Ferry's): the retired one's.
        assert_eq!(place(reached(&at("v1", None, None), Some(&v4))), Some(6));
    }
}

//! A Rancher service resource as Ferry reads it: its state, and what it runs (the
//! launchConfig's image, and Ferry's labels on it).

use ferry_docker::labels::LABEL_IMAGE;
use ferry_docker::running::Running;
use serde_json::Value;

/// A service's `state`, as far as Ferry acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Running the launchConfig; ready for an upgrade.
    Active,
    /// Upgraded and waiting for `finishupgrade` (or `rollback`).
    Upgraded,
    /// A cancelled upgrade, waiting for `rollback`.
    CanceledUpgrade,
    /// Any other state (`upgrading`, `activating`...), or none: wait for it to settle.
    Other(String),
}

impl ServiceState {
    /// The state as Rancher spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Upgraded => "upgraded",
            Self::CanceledUpgrade => "canceled-upgrade",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a service resource (`unknown` when it has none).
pub fn state_of(service: &Value) -> ServiceState {
    match service["state"].as_str() {
        Some("active") => ServiceState::Active,
        Some("upgraded") => ServiceState::Upgraded,
        Some("canceled-upgrade") => ServiceState::CanceledUpgrade,
        Some(other) => ServiceState::Other(other.to_owned()),
        None => ServiceState::Other("unknown".to_owned()),
    }
}

/// What a service resource runs, from its launchConfig and Ferry's labels on it; none
/// without an image.
pub fn running_of(service: &Value) -> Option<Running> {
    let launch = &service["launchConfig"];
    let image = launch["imageUuid"].as_str()?.trim_start_matches("docker:");
    let labels = &launch["labels"];
    let mut running =
        Running::from_labels(service["id"].as_str().unwrap_or_default().to_owned(), |k| {
            labels[k].as_str()
        });
    // Deployed by hand or by an older Ferry: the image is the launchConfig's.
    if labels[LABEL_IMAGE].as_str().is_none() {
        running.image = image.to_owned();
    }
    // Rancher has no blue/green slots or replicas of Ferry's.
    running.port = 0;
    running.replica = 0;
    Some(running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_runs_its_labelled_image_or_else_its_launch_config_image() {
        let run = uuid::Uuid::now_v7();
        let service = json!({"id": "1s1", "state": "active", "launchConfig": {
            "imageUuid": "docker:r/shop@sha256:11",
            "labels": {"io.ferry.image": "r/shop:2@sha256:11", "io.ferry.revision": "2",
                       "io.ferry.run-id": run.to_string(), "io.ferry.previous-image": "r/shop:1@sha256:00"}}});
        let r = running_of(&service).unwrap();
        assert_eq!(
            (r.image.as_str(), r.revision.as_str(), r.run_id),
            ("r/shop:2@sha256:11", "2", Some(run))
        );
        assert_eq!(r.previous_image.as_deref(), Some("r/shop:1@sha256:00"));
        assert_eq!(state_of(&service), ServiceState::Active);
        let by_hand =
            json!({"state": "upgrading", "launchConfig": {"imageUuid": "docker:nginx:1"}});
        assert_eq!(running_of(&by_hand).unwrap().image, "nginx:1");
        assert_eq!(state_of(&by_hand).as_str(), "upgrading");
        assert!(running_of(&json!({"state": "active"})).is_none());
    }
}

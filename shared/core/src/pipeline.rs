//! Who consumes what: every stage's queue bindings, derived from the stages' input
//! declarations (`stage::inputs`), so the topology (and
//! `deploy/rabbitmq/definitions.json`) can be derived without the services.

use crate::bus::StageSpec;
use crate::stage::{BuildInput, DeployInput, Input, NotifyInput, PullInput, PushInput, TestInput};

/// The consuming stages in pipeline order. The hook-receiver only publishes.
pub fn stages() -> Vec<StageSpec> {
    vec![
        BuildInput::spec(),
        PushInput::spec(),
        PullInput::spec(),
        DeployInput::spec(),
        TestInput::spec(),
        NotifyInput::spec(),
    ]
}

/// The spec of one consuming service.
pub fn stage(service: &str) -> StageSpec {
    stages()
        .into_iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("`{service}` is not a consuming stage of the pipeline"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bindings as they were listed by hand before they were derived: queue names
    /// and patterns are a contract with running brokers.
    #[test]
    fn derived_stages_keep_every_queue_and_binding() {
        let listed: Vec<(&str, &str, Vec<&str>)> = vec![
            ("builder", "build", vec!["source.changed"]),
            ("pusher", "push", vec!["image.built"]),
            ("puller", "pull", vec!["image.pushed"]),
            (
                "rancher-updater",
                "deploy",
                vec![
                    "image.pulled.*",
                    "test.passed.*",
                    "test.failed.*",
                    "deploy.requested.*",
                    "approval.granted.*",
                    "approval.rejected.*",
                    "hold.expired.*",
                    "scale.requested.*",
                ],
            ),
            ("tester", "test", vec!["deploy.succeeded.*"]),
            (
                "notifier",
                "notify",
                vec![
                    "*.failed.#",
                    "source.changed",
                    "image.built",
                    "image.pushed",
                    "image.pulled.#",
                    "deploy.started.#",
                    "deploy.succeeded.#",
                    "deploy.superseded.#",
                    "deploy.rolled_back.#",
                    "test.passed.#",
                    "approval.#",
                    "scale.succeeded.#",
                ],
            ),
        ];
        let stages = stages();
        let derived: Vec<(&str, &str, Vec<&str>)> = stages
            .iter()
            .map(|s| {
                let bindings = s.bindings.iter().map(String::as_str).collect();
                (s.service, s.stage.as_str(), bindings)
            })
            .collect();
        assert_eq!(derived, listed);
    }
}

//! Who consumes what: every stage's queue bindings, in one place, so the topology
//! (and `deploy/rabbitmq/definitions.json`) can be derived without the services.

use crate::bus::StageSpec;

/// The consuming stages in pipeline order. The hook-receiver only publishes.
pub fn stages() -> Vec<StageSpec> {
    let spec = |service, stage, bindings: &[&str]| StageSpec {
        service,
        stage,
        bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
    };
    vec![
        spec("builder", "build", &["source.changed"]),
        spec("pusher", "push", &["image.built"]),
        spec("puller", "pull", &["image.pushed"]),
        // First environment after the pull, later ones on promotion, any on request.
        spec(
            "rancher-updater",
            "deploy",
            &[
                "image.pulled.*",
                "test.passed.*",
                "test.failed.*",
                "deploy.requested.*",
                "approval.granted.*",
                // Approval holds whose time ran out (dead-lettered by RabbitMQ).
                "hold.expired.*",
            ],
        ),
        spec("tester", "test", &["deploy.succeeded.*"]),
        // Whatever a person may want to hear about. This also gives every deploy event
        // a queue: publishes are mandatory, so an event nobody takes is an error.
        spec(
            "notifier",
            "notify",
            &[
                "*.failed.#",
                // The run's author, commit message and stage durations for messages.
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
            ],
        ),
    ]
}

/// The spec of one consuming service.
pub fn stage(service: &str) -> StageSpec {
    stages()
        .into_iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("`{service}` is not a consuming stage of the pipeline"))
}

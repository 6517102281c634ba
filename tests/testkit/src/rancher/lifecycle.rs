//! Rancher's state machines as tables: which states are transitional, which count as
//! active, and which actions each service state allows.

/// States a process is moving the resource through (cattle's `transitioning` states).
pub(super) const TRANSITIONING: &[&str] = &[
    "registering",
    "activating",
    "deactivating",
    "updating-active",
    "updating-inactive",
    "upgrading",
    "finishing-upgrade",
    "rolling-back",
    "canceling-upgrade",
    "restarting",
    "removing",
    "creating",
    "starting",
    "stopping",
];

pub(super) fn transitioning(state: &str) -> &'static str {
    if TRANSITIONING.contains(&state) {
        "yes"
    } else {
        "no"
    }
}

/// States in which cattle counts a service as active (`getServiceActiveStates`).
pub(super) const ACTIVE_STATES: &[&str] = &[
    "activating",
    "active",
    "updating-active",
    "upgrading",
    "upgraded",
    "rolling-back",
    "canceling-upgrade",
    "canceled-upgrade",
    "finishing-upgrade",
    "restarting",
];

/// States `service.update` starts from (cattle's process definition).
pub(super) const UPDATE_STATES: &[&str] = &[
    "inactive",
    "active",
    "updating-active",
    "finishing-upgrade",
    "activating",
    "canceling-upgrade",
    "upgrading",
    "rolling-back",
];

pub(super) fn actions_for(state: &str) -> &'static [&'static str] {
    match state {
        "active" => &["upgrade", "restart", "update", "deactivate", "remove"],
        "inactive" => &["activate", "upgrade", "update", "remove"],
        "activating" | "updating-active" => &["upgrade", "deactivate", "update", "remove"],
        "updating-inactive" => &["deactivate", "remove"],
        "upgrading" => &["cancelupgrade", "rollback", "update", "remove"],
        "upgraded" => &["finishupgrade", "rollback", "remove"],
        "canceled-upgrade" => &["rollback", "remove"],
        "finishing-upgrade" => &["cancelupgrade", "update", "remove"],
        "rolling-back" | "canceling-upgrade" => &["update", "remove"],
        "restarting" => &["activate", "deactivate", "remove"],
        "registering" | "deactivating" => &["remove"],
        _ => &[],
    }
}

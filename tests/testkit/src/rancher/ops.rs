//! A service's background operations (the work behind its transitional states), run one
//! at a time per service.

use super::instances::{
    current_of, ensure_scale, start_instance, stop_instance, upgrade_instances,
};
use super::state::{Shared, lock, now_ms};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    Create {
        start: bool,
    },
    Activate,
    Deactivate,
    Update,
    Restart,
    Upgrade {
        stuck: bool,
        start_first: bool,
        was_active: bool,
    },
    FinishUpgrade,
    Rollback,
    CancelUpgrade,
    Remove,
}

/// Run `op` in the background after the transition delay, then move the service from
/// `transitional` to `done` (unless another operation moved it meanwhile).
pub(super) fn spawn_op(shared: &Shared, sid: &str, op: Op, transitional: &str, done: &str) {
    let delay = Duration::from_millis(lock(shared).misbehave.transition_ms);
    let (shared, sid) = (shared.clone(), sid.to_owned());
    let (transitional, done) = (transitional.to_owned(), done.to_owned());
    tokio::task::spawn_blocking(move || {
        let Some(ops) = lock(&shared).service(&sid).map(|s| s.ops.clone()) else {
            return;
        };
        let _serial = ops.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::sleep(delay);
        if run_op(&shared, &sid, op) {
            settle(&shared, &sid, &transitional, &done);
        }
    });
}

pub(super) fn settle(shared: &Shared, sid: &str, from: &str, to: &str) {
    let mut sim = lock(shared);
    if let Some(s) = sim.service_mut(sid)
        && s.state == from
    {
        s.state = to.to_owned();
        if to == "removed" {
            s.removed = Some(now_ms());
        }
    }
}

/// The work of an operation; `false` when it never finishes (a stuck upgrade).
pub(super) fn run_op(shared: &Shared, sid: &str, op: Op) -> bool {
    let state = |shared: &Shared| {
        lock(shared)
            .service(sid)
            .map(|s| s.state.clone())
            .unwrap_or_default()
    };
    match op {
        Op::Create { start } => {
            if start {
                settle(shared, sid, "registering", "activating");
                ensure_scale(shared, sid);
            }
        }
        Op::Activate => {
            for (id, st) in current_of(shared, sid) {
                if st == "stopped" {
                    start_instance(shared, &id, false);
                }
            }
            ensure_scale(shared, sid);
        }
        Op::Deactivate => {
            for (id, st) in current_of(shared, sid) {
                if st == "running" || st == "starting" {
                    stop_instance(shared, &id, false);
                }
            }
        }
        Op::Update => {
            if !matches!(
                state(shared).as_str(),
                "inactive" | "updating-inactive" | "registering" | "removing" | "removed"
            ) {
                ensure_scale(shared, sid);
            }
        }
        Op::Restart => {
            for (id, st) in current_of(shared, sid) {
                if st == "running" {
                    start_instance(shared, &id, true);
                }
            }
        }
        Op::Upgrade {
            stuck,
            start_first,
            was_active,
        } => {
            if stuck {
                return false;
            }
            upgrade_instances(shared, sid, start_first, was_active);
            settle(shared, sid, "upgrading", "upgraded");
        }
        Op::FinishUpgrade => {
            let kept = match lock(shared).service_mut(sid) {
                Some(s) => {
                    s.previous = None;
                    std::mem::take(&mut s.kept)
                }
                None => vec![],
            };
            for id in kept {
                stop_instance(shared, &id, true);
            }
        }
        Op::Rollback => {
            let (new, old) = {
                let mut sim = lock(shared);
                let Some(s) = sim.service_mut(sid) else {
                    return true;
                };
                if let Some(previous) = s.previous.take() {
                    s.launch = previous;
                }
                // Only an upgrade that got as far as replacing instances has any to undo.
                let old = std::mem::take(&mut s.kept);
                if old.is_empty() {
                    (vec![], vec![])
                } else {
                    let new = std::mem::replace(&mut s.current, old.clone());
                    (new, old)
                }
            };
            for id in new {
                stop_instance(shared, &id, true);
            }
            for id in old {
                let stopped = lock(shared)
                    .instance(&id)
                    .is_some_and(|i| i.state == "stopped");
                if stopped {
                    start_instance(shared, &id, false);
                }
            }
        }
        Op::CancelUpgrade => {}
        Op::Remove => {
            let all: Vec<String> = {
                let sim = lock(shared);
                sim.service(sid)
                    .map(|s| sim.instances_of(s).map(|i| i.id.clone()).collect())
                    .unwrap_or_default()
            };
            for id in all {
                stop_instance(shared, &id, true);
            }
        }
    }
    true
}

//! Judging each accepted run from the record, the queues and the production host, the
//! way a Jepsen checker judges acknowledged writes. Definitions (printed with the figures):
//!
//! - **terminal**: the run has `test.passed.production` (it went all the way) or an event
//!   that ends a run: `build.failed`, `push.failed`, `pull.failed`, `deploy.failed.*`,
//!   `test.failed.*`, `deploy.superseded.*`, `deploy.rolled_back.*`,
//!   `approval.rejected.*`, `approval.expired.*`.
//! - **lost**: accepted (the trigger got its 202) but not terminal at the end, and no
//!   message of the run waits in any of the stages' queues (main, retry, parked) once the
//!   services are stopped: nothing can ever finish it. Includes runs whose first event
//!   never reached the tap at all (`unseen`).
//! - **stuck**: not terminal at the end, but a message of the run still waits in a queue
//!   (ready, in a retry queue, or parked without its `<stage>.failed`): it did not
//!   progress within the settle time.
//! - **duplicate production deploy**: a run with more than one distinct
//!   `deploy.started.production` or `deploy.succeeded.production` event id (a redelivered
//!   event keeps its id: that is at-least-once delivery, not a second deploy), or whose
//!   production container was created again after its `deploy.succeeded.production`.

use crate::hosts::Created;
use crate::tap::Seen;
use std::collections::HashMap;
use uuid::Uuid;

pub const PRODUCTION: &str = "production";

pub fn is_terminal(s: &Seen) -> bool {
    s.routing_key == format!("test.passed.{PRODUCTION}")
        || matches!(
            s.kind,
            "build.failed"
                | "push.failed"
                | "pull.failed"
                | "deploy.failed"
                | "test.failed"
                | "deploy.superseded"
                | "deploy.rolled_back"
                | "approval.rejected"
                | "approval.expired"
        )
}

/// How one accepted run ended.
#[derive(Debug, PartialEq)]
pub enum Fate {
    /// Reached `test.passed.production`.
    Production,
    /// Ended by this other terminal event.
    Ended(String),
    Stuck(Vec<String>),
    Lost {
        last: Option<String>,
    },
}

pub fn fate(events: Option<&Vec<Seen>>, waiting: Option<&Vec<String>>) -> Fate {
    let events = events.map(Vec::as_slice).unwrap_or_default();
    if events
        .iter()
        .any(|s| s.routing_key == format!("test.passed.{PRODUCTION}"))
    {
        return Fate::Production;
    }
    if let Some(end) = events.iter().find(|s| is_terminal(s)) {
        return Fate::Ended(end.routing_key.clone());
    }
    match waiting {
        Some(w) if !w.is_empty() => Fate::Stuck(w.clone()),
        _ => Fate::Lost {
            last: events.last().map(|s| s.routing_key.clone()),
        },
    }
}

/// Why a run counts as a duplicate production deploy, if it does.
pub fn duplicate_deploy(
    events: Option<&Vec<Seen>>,
    created: Option<&Vec<Created>>,
) -> Option<String> {
    let events = events.map(Vec::as_slice).unwrap_or_default();
    let count = |key: &str| events.iter().filter(|s| s.routing_key == key).count();
    let started = count(&format!("deploy.started.{PRODUCTION}"));
    let succeeded = count(&format!("deploy.succeeded.{PRODUCTION}"));
    if started > 1 || succeeded > 1 {
        return Some(format!(
            "{started} distinct deploy.started.{PRODUCTION}, {succeeded} distinct deploy.succeeded.{PRODUCTION}"
        ));
    }
    let done_at = events
        .iter()
        .find(|s| s.routing_key == format!("deploy.succeeded.{PRODUCTION}"))
        .map(|s| s.time_ns)?;
    let later: Vec<&str> = created
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.time_ns > done_at)
        .map(|c| c.name.as_str())
        .collect();
    (!later.is_empty()).then(|| {
        format!(
            "production container created again after deploy.succeeded.{PRODUCTION}: {}",
            later.join(", ")
        )
    })
}

/// Counts of the ends other than production, e.g. `deploy.superseded.staging: 7`.
pub fn ends(fates: &HashMap<Uuid, Fate>) -> Vec<(String, usize)> {
    let mut by: HashMap<String, usize> = HashMap::new();
    for f in fates.values() {
        if let Fate::Ended(k) = f {
            *by.entry(k.clone()).or_default() += 1;
        }
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort();
    v
}

//! Concurrent switches, judged from the Docker daemon's own event log rather than from
//! Ferry's events: did two deploys ever switch the same environment at the same time?
//!
//! A run's switch span opens at the `create` of a container labelled with its run id and
//! closes at the first of: (a) `die`/`stop`/`kill`/`rename`/`destroy` of a container of
//! the environment with another run id that existed before the span opened (the
//! predecessor retired, or a leftover removed); (b) `die`/`destroy` of one of the run's own
//! containers (a failed or abandoned switch); (c) `start` of one of its own containers
//! while nothing else of the environment runs (a first deploy: nothing to retire). A
//! retried run creating again while its span is open stays in the same span. A `create`
//! by another run while a span is open is a concurrent switch.

use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// One container event of the project, parsed from `docker events --format '{{json .}}'`.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub time_ns: i64,
    pub action: String,
    pub id: String,
    pub name: String,
    pub env: String,
    pub run_id: Option<Uuid>,
}

/// Run `intruder` created a container in `env` while `running`'s switch span was open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub env: String,
    pub running: Uuid,
    pub intruder: Uuid,
    pub at_ns: i64,
    pub span_opened_ns: i64,
    /// The intruder's container, by name.
    pub container: String,
}

/// Container events with an `io.ferry.environment` label, oldest first. Other event
/// types and unlabelled containers are skipped; actions are kept verbatim (`exec_create:
/// …`, `health_status: …` included: `concurrent_switches` ignores them).
pub fn parse_events(json_lines: &str) -> anyhow::Result<Vec<ContainerEvent>> {
    let mut events = Vec::new();
    for line in json_lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        // Old daemons omit `Type`: their events are container events.
        if v["Type"].as_str().is_some_and(|t| t != "container") {
            continue;
        }
        let attrs = &v["Actor"]["Attributes"];
        let Some(env) = attrs["io.ferry.environment"].as_str() else {
            continue;
        };
        let text = |a: &serde_json::Value, b: &serde_json::Value| {
            a.as_str().or(b.as_str()).unwrap_or_default().to_owned()
        };
        let time_ns = v["timeNano"]
            .as_i64()
            .or_else(|| v["time"].as_i64().map(|s| s * 1_000_000_000))
            .unwrap_or_default();
        events.push(ContainerEvent {
            time_ns,
            action: text(&v["Action"], &v["status"]),
            id: text(&v["id"], &v["Actor"]["ID"]),
            name: attrs["name"].as_str().unwrap_or_default().to_owned(),
            env: env.to_owned(),
            run_id: attrs["io.ferry.run-id"]
                .as_str()
                .and_then(|r| Uuid::parse_str(r).ok()),
        });
    }
    // Stable: events of one nanosecond keep the daemon's order.
    events.sort_by_key(|e| e.time_ns);
    Ok(events)
}

/// An open switch span, and the runs already reported against it (a retried intruder
/// creating twice is one overlap).
struct Span {
    opened_ns: i64,
    reported: HashSet<Uuid>,
}

/// What is known of one environment while replaying its events.
#[derive(Default)]
struct EnvState {
    /// Container ids running now.
    running: HashSet<String>,
    /// When each container was first seen; `i64::MIN` for one that predates the log.
    born: HashMap<String, i64>,
    spans: HashMap<Uuid, Span>,
}

/// Every concurrent switch in `events` (sorted by time, as `parse_events` returns them).
pub fn concurrent_switches(events: &[ContainerEvent]) -> Vec<Overlap> {
    const RELEVANT: [&str; 7] = [
        "create", "start", "die", "stop", "kill", "rename", "destroy",
    ];
    let mut envs: HashMap<&str, EnvState> = HashMap::new();
    // A container whose first event is not its `create` predates the log; unless that
    // event is a `start`, assume it was running (the window may open mid-deploy), or a
    // first-deploy `start` would close a span that still has a predecessor to retire.
    let mut seen = HashSet::new();
    for e in events
        .iter()
        .filter(|e| RELEVANT.contains(&e.action.as_str()))
    {
        if seen.insert(e.id.as_str()) && e.action != "create" {
            let st = envs.entry(e.env.as_str()).or_default();
            st.born.insert(e.id.clone(), i64::MIN);
            if e.action != "start" {
                st.running.insert(e.id.clone());
            }
        }
    }
    let mut overlaps = Vec::new();
    for e in events
        .iter()
        .filter(|e| RELEVANT.contains(&e.action.as_str()))
    {
        let st = envs.entry(e.env.as_str()).or_default();
        let (action, own) = (e.action.as_str(), e.run_id);
        let born = st.born.get(&e.id).copied().unwrap_or(i64::MAX);
        let others_running = st.running.iter().any(|id| *id != e.id);
        // Which spans this event closes, judged on the state before it.
        st.spans.retain(|run, span| {
            let mine = own == Some(*run);
            let closes = match action {
                "die" | "destroy" if mine => true,
                "start" if mine => !others_running,
                "die" | "stop" | "kill" | "rename" | "destroy" => !mine && born < span.opened_ns,
                _ => false,
            };
            !closes
        });
        match action {
            "create" => {
                st.born.entry(e.id.clone()).or_insert(e.time_ns);
                // A container without a run id cannot switch anything: nothing to judge.
                let Some(run) = own else { continue };
                for (other, span) in st.spans.iter_mut() {
                    if *other != run && span.reported.insert(run) {
                        overlaps.push(Overlap {
                            env: e.env.clone(),
                            running: *other,
                            intruder: run,
                            at_ns: e.time_ns,
                            span_opened_ns: span.opened_ns,
                            container: e.name.clone(),
                        });
                    }
                }
                // A retried run's second create joins its open span.
                st.spans.entry(run).or_insert_with(|| Span {
                    opened_ns: e.time_ns,
                    reported: HashSet::new(),
                });
            }
            "start" => {
                st.running.insert(e.id.clone());
            }
            "die" | "stop" | "kill" | "destroy" => {
                st.running.remove(&e.id);
            }
            _ => {}
        }
    }
    // Several spans open at one create are found in hash order: report them in a stable one.
    overlaps.sort_by_key(|o| (o.at_ns, o.running));
    overlaps
}

/// The overlaps in a host's recorded events of the project.
pub fn on_host(log: &ferry_testkit::EventLog) -> anyhow::Result<Vec<Overlap>> {
    Ok(concurrent_switches(&parse_events(&log.lines().join("\n"))?))
}

#[cfg(test)]
mod tests;

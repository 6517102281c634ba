//! The runs the operator API can show: built in memory from the history stream (every
//! event Ferry published, kept by RabbitMQ for `broker.history_max_age`). Each API
//! replica builds its own copy; nothing here is the system of record.

use chrono::{DateTime, Utc};
use ferry_hooks::plan::Release;
use ferry_shared::event::{Envelope, Event, Starter};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Runs kept in memory; the oldest are forgotten first. Each keeps a commit message's
/// subject line and an author of at most `message::KEPT_BYTES`.
pub const KEPT_RUNS: usize = 10_000;

#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub run_id: Uuid,
    pub project: String,
    pub started: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who started it (an operator, or the commit's author): lets an approval that the
    /// own-run rule refuses be answered without touching the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<Starter>,
    /// `running`, `waiting for approval`, or the last event's kind for an ended run.
    pub status: String,
    pub events: Vec<Line>,
    /// The branch or tag its push named (git): a config change rebuilding this
    /// revision claims the same one.
    #[serde(skip)]
    pub reference: Option<String>,
}

/// One event of a run, as lists and pages need it. Ten thousand runs of a dozen
/// events are kept: the kind is the event's own static name, and an image, revision or
/// environment a run's earlier line already holds is shared with it, not copied.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub event_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "text")]
    pub environment: Option<Arc<str>>,
    pub time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "text")]
    pub image: Option<Arc<str>>,
    /// What a person wants to know about it: a failure's reason, who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Box<str>>,
    /// The revision this event names (a rollback's differs from its run's): for the
    /// dashboard, not in the API's JSON.
    #[serde(skip)]
    pub revision: Option<Arc<str>>,
    /// Where a deploy or rollback put the image (`h1`, `h1/r1`, ...).
    #[serde(skip)]
    pub hosts: Box<[Box<str>]>,
}

/// A shared string as JSON text (serde's `Arc` support is a feature the workspace does
/// not turn on for one field).
fn text<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(t),
        None => s.serialize_none(),
    }
}

/// `value` as an `Arc` that an earlier line of the run already holds, else a new one.
fn shared(
    lines: &[Line],
    field: impl Fn(&Line) -> Option<&Arc<str>>,
    value: Option<&str>,
) -> Option<Arc<str>> {
    let value = value?;
    let known = lines
        .iter()
        .rev()
        .filter_map(field)
        .find(|a| a.as_ref() == value);
    Some(known.map_or_else(|| Arc::from(value), Arc::clone))
}

#[derive(Default)]
pub struct RunIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<Uuid, Run>,
    /// (first seen, run) in arrival order, for forgetting the oldest.
    order: BTreeMap<(u64, Uuid), ()>,
    seen: u64,
    /// Per project: what its last environment runs, and what was built last.
    releases: HashMap<String, Releases>,
}

#[derive(Default)]
struct Releases {
    deployed: Option<Release>,
    built: Option<Release>,
}

/// Whether an event of this kind ends a run (in its environment).
fn terminal(e: &Envelope, project_last_env: Option<&str>) -> bool {
    match &e.event {
        Event::TestPassed(_) => e.environment.as_deref() == project_last_env,
        Event::DeploySucceeded(_) => false,
        k => {
            matches!(
                k.kind(),
                "deploy.rolled_back"
                    | "deploy.superseded"
                    | "scale.succeeded"
                    | "approval.rejected"
                    | "approval.expired"
            ) || k.kind().ends_with(".failed")
        }
    }
}

fn detail(e: &Event) -> Option<String> {
    match e {
        Event::BuildFailed(f)
        | Event::PushFailed(f)
        | Event::PullFailed(f)
        | Event::DeployFailed(f)
        | Event::NotifyFailed(f) => Some(f.reason.clone()),
        Event::TestFailed(f) => Some(f.failure.reason.clone()),
        Event::DeployRolledBack(r) => Some(r.reason.clone()),
        Event::ScaleRequested(s) => Some(match &s.requested_by {
            Some(by) => format!("to {} by {by}", s.to),
            None => format!("to {}", s.to),
        }),
        Event::ScaleSucceeded(s) => Some(format!("{} → {}", s.from, s.to)),
        Event::ApprovalRequested(a) => Some(format!("expires {}", a.expires_at.to_rfc3339())),
        Event::ApprovalGranted(d) | Event::ApprovalRejected(d) | Event::ApprovalExpired(d) => {
            Some(match &d.comment {
                Some(c) => format!("by {}: {c}", d.by),
                None => format!("by {}", d.by),
            })
        }
        Event::DeployRequested(r) => r
            .requested_by
            .as_ref()
            .map(|by| format!("{} by {by}", r.reason)),
        _ => None,
    }
}

impl RunIndex {
    /// Add an event (again: repeats are recognised by event id).
    pub fn record(&self, e: Envelope, last_env: impl Fn(&str) -> Option<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        let run_id = Uuid::from(e.run_id);
        if !inner.runs.contains_key(&run_id) {
            inner.seen += 1;
            inner.order.insert((inner.seen, run_id), ());
            inner.runs.insert(
                run_id,
                Run {
                    run_id,
                    project: e.project.clone(),
                    started: e.time,
                    revision: None,
                    author: None,
                    message: None,
                    started_by: None,
                    status: "running".into(),
                    events: vec![],
                    reference: None,
                },
            );
            while inner.runs.len() > KEPT_RUNS {
                let Some(((_, oldest), ())) = inner.order.pop_first() else {
                    break;
                };
                inner.runs.remove(&oldest);
            }
        }
        let Some(run) = inner.runs.get_mut(&run_id) else {
            return;
        };
        if run.events.iter().any(|l| l.event_id == e.event_id) {
            return;
        }
        if let Event::SourceChanged(s) = &e.event {
            // Thousands of runs are kept: of what the sender wrote, only a little.
            use ferry_hooks::message::{KEPT_BYTES, cut, subject};
            run.author = s.author.as_deref().map(|a| cut(a, KEPT_BYTES));
            run.message = s.message.as_deref().map(|m| subject(m, KEPT_BYTES));
            run.reference.clone_from(&s.reference);
        }
        let release = |revision: &str| Release {
            revision: revision.to_owned(),
            // A rollback to another revision does not know that one's branch: the
            // builder then accepts it on any followed branch.
            reference: (run.revision.as_deref().is_none_or(|r| r == revision))
                .then(|| run.reference.clone())
                .flatten(),
        };
        let in_last_env = || e.environment.is_some() && e.environment == last_env(&e.project);
        let releases = inner.releases.entry(e.project.clone()).or_default();
        match &e.event {
            Event::ImageBuilt(b) if !b.revision.is_empty() => {
                releases.built = Some(release(&b.revision));
            }
            Event::DeploySucceeded(d) if !d.revision.is_empty() && in_last_env() => {
                releases.deployed = Some(release(&d.revision));
            }
            Event::DeployRolledBack(r) if !r.revision.is_empty() && in_last_env() => {
                releases.deployed = Some(release(&r.revision));
            }
            _ => {}
        }
        if let Some(r) = e.event.revision() {
            run.revision.get_or_insert_with(|| r.to_owned());
        }
        if run.started_by.is_none() {
            run.started_by.clone_from(&e.started_by);
        }
        run.started = run.started.min(e.time);
        // A notification that failed says nothing about where the run is.
        run.status = if matches!(e.event, Event::NotifyFailed(_)) {
            std::mem::take(&mut run.status)
        } else if terminal(&e, last_env(&e.project).as_deref()) {
            e.routing_key()
        } else if matches!(e.event, Event::ApprovalRequested(_)) {
            "waiting for approval".into()
        } else {
            "running".into()
        };
        let line = Line {
            event_id: e.event_id,
            causation_id: e.causation_id,
            kind: e.kind(),
            environment: shared(
                &run.events,
                |l| l.environment.as_ref(),
                e.environment.as_deref(),
            ),
            time: e.time,
            image: shared(&run.events, |l| l.image.as_ref(), e.event.image()),
            detail: detail(&e.event).map(String::into_boxed_str),
            revision: shared(&run.events, |l| l.revision.as_ref(), e.event.revision()),
            hosts: match &e.event {
                Event::DeploySucceeded(d) => {
                    d.hosts.iter().map(|h| h.host.as_str().into()).collect()
                }
                Event::DeployRolledBack(r) => {
                    r.hosts.iter().map(|h| h.host.as_str().into()).collect()
                }
                _ => Box::default(),
            },
        };
        // Exactly as long as needed: a doubling Vec would keep a third of it empty.
        run.events.reserve_exact(1);
        run.events.push(line);
    }

    /// What a config change of `project` rebuilds: the revision its last environment
    /// runs, else the last one built.
    pub fn current_release(&self, project: &str) -> Option<Release> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let r = inner.releases.get(project)?;
        r.deployed.clone().or_else(|| r.built.clone())
    }

    /// Where memory's list ends: the (start, run id) of the oldest run held. Older runs
    /// are only in the ledger.
    pub fn oldest(&self) -> Option<(DateTime<Utc>, Uuid)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .runs
            .values()
            .min_by_key(|r| list_order(r))
            .map(|r| (r.started, r.run_id))
    }

    /// The newest `limit` runs of `project`, newest first.
    pub fn list(&self, project: &str, limit: usize) -> Vec<Run> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut runs: Vec<Run> = inner
            .runs
            .values()
            .filter(|r| r.project == project)
            .cloned()
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started));
        runs.truncate(limit);
        runs
    }

    /// The newest runs that `keep` accepts, newest first: `limit` of them after skipping
    /// `skip`, and whether more follow. Only the page is copied.
    pub fn page(&self, keep: impl Fn(&Run) -> bool, skip: usize, limit: usize) -> (Vec<Run>, bool) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut runs: Vec<&Run> = inner.runs.values().filter(|r| keep(r)).collect();
        runs.sort_by_key(|r| std::cmp::Reverse(list_order(r)));
        let more = runs.len() > skip + limit;
        let page = runs.into_iter().skip(skip).take(limit).cloned().collect();
        (page, more)
    }

    /// What each environment of `project` runs now: the newest deploy or rollback
    /// that succeeded there, with its run.
    pub fn deployments(&self, project: &str) -> Vec<Deployment> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut newest: HashMap<&str, (&Run, &Line)> = HashMap::new();
        for run in inner.runs.values().filter(|r| r.project == project) {
            for l in &run.events {
                let placed = matches!(l.kind, "deploy.succeeded" | "deploy.rolled_back");
                let Some(env) = l.environment.as_deref().filter(|_| placed) else {
                    continue;
                };
                if newest.get(env).is_none_or(|(_, old)| old.time < l.time) {
                    newest.insert(env, (run, l));
                }
            }
        }
        newest
            .into_iter()
            .map(|(env, (run, l))| Deployment {
                environment: env.to_owned(),
                revision: l
                    .revision
                    .as_deref()
                    .map(str::to_owned)
                    .or_else(|| run.revision.clone()),
                image: l.image.as_deref().map(str::to_owned),
                hosts: l.hosts.iter().map(|h| h.to_string()).collect(),
                since: l.time,
                run_id: run.run_id,
                shipped_by: shipped_by(run),
                rolled_back: l.kind == "deploy.rolled_back",
            })
            .collect()
    }

    pub fn get(&self, run_id: Uuid) -> Option<Run> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.runs.get(&run_id).cloned()
    }

    /// The image of `revision` of `project` most recently deployed into `environment`
    /// (a `deploy.succeeded` there, by a run whose tests there did not fail): the only
    /// images a rollback may put back at once.
    /// A pushed image says nothing about its run: it may be waiting for approval, have
    /// been rejected, or have failed the tests of an environment before this one.
    pub fn deployed_image(
        &self,
        project: &str,
        environment: &str,
        revision: &str,
    ) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .runs
            .values()
            .filter(|r| r.project == project)
            // A deploy whose tests there failed was rolled back: not a known good image.
            .filter(|r| {
                !r.events.iter().any(|l| {
                    l.kind == "test.failed" && l.environment.as_deref() == Some(environment)
                })
            })
            .flat_map(|r| {
                let run_revision = r.revision.as_deref();
                r.events.iter().map(move |l| (run_revision, l))
            })
            .filter(|(_, l)| {
                l.kind == "deploy.succeeded" && l.environment.as_deref() == Some(environment)
            })
            .filter(|(run_revision, l)| {
                l.image.as_deref().is_some_and(|i| {
                    match crate::registry::ImageRef::parse("", i).tag {
                        Some(t) => crate::registry::tag_of_revision(&t, revision),
                        // Deployed by digest alone: the run says which revision it was.
                        None => *run_revision == Some(revision),
                    }
                })
            })
            .max_by_key(|(_, l)| l.time)
            .and_then(|(_, l)| l.image.as_deref().map(str::to_owned))
    }
}

/// What an environment runs now, for the dashboard.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub environment: String,
    pub revision: Option<String>,
    pub image: Option<String>,
    pub hosts: Vec<String>,
    pub since: DateTime<Utc>,
    pub run_id: Uuid,
    pub shipped_by: Option<String>,
    pub rolled_back: bool,
}

/// Who a run ships for: the operator who started it, else the pusher, else the
/// commit's author.
pub fn shipped_by(run: &Run) -> Option<String> {
    match &run.started_by {
        Some(Starter::Operator(name)) => Some(name.clone()),
        Some(Starter::Push { pusher, .. }) => Some(pusher.clone()),
        _ => run.author.clone(),
    }
}

impl ferry_hooks::plan::Releases for RunIndex {
    fn current(&self, project: &str) -> Option<Release> {
        self.current_release(project)
    }
}

/// Where a run stands in lists: its start to the millisecond, then its id. The ledger's
/// pages go on from memory's end by the same key (`older::Cursor`), so two runs that
/// started in the same millisecond are neither skipped nor listed twice where they meet.
fn list_order(r: &Run) -> (i64, Uuid) {
    (r.started.timestamp_millis(), r.run_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::event::SourceChanged;

    #[test]
    fn a_long_commit_message_is_kept_as_a_short_subject() {
        let index = RunIndex::default();
        let long = format!("{}\n\n{}", "s".repeat(500), "body ".repeat(100_000));
        let e = Envelope::new_run(
            "shop",
            Event::SourceChanged(SourceChanged {
                source: "manual".into(),
                repository: "r".into(),
                reference: None,
                revision: "1".into(),
                author: Some("a".repeat(10_000)),
                message: Some(long),
                changed_paths: vec![],
                config_change: None,
                committed: None,
            }),
        );
        let id = e.run_id;
        index.record(e, |_| None);
        let run = index.get(id.into()).unwrap();
        let message = run.message.unwrap();
        assert!(
            message.len() <= ferry_hooks::message::KEPT_BYTES,
            "{}",
            message.len()
        );
        assert!(message.ends_with('…') && message.starts_with("sss"));
        assert!(run.author.unwrap().len() <= ferry_hooks::message::KEPT_BYTES);
    }

    #[test]
    fn runs_of_one_millisecond_are_listed_by_id_as_the_ledger_pages_go_on() {
        let index = RunIndex::default();
        let at = DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap();
        // Two runs started within the same millisecond, the one with the larger id first.
        let mut ids = Vec::new();
        for (id, ns) in [("ffffffff", 100), ("00000000", 900)] {
            let mut e = ferry_testkit::source_changed("1");
            let run: Uuid = format!("{id}-0000-4000-8000-000000000000").parse().unwrap();
            e.run_id = run.into();
            e.time = at + chrono::Duration::nanoseconds(ns);
            ids.push(run);
            index.record(e, |_| None);
        }
        // By (millisecond, id), newest first: the larger id first, the smaller one last
        // and where memory ends, as `ledger_runs` orders them.
        let (page, _) = index.page(|_| true, 0, 10);
        let listed: Vec<Uuid> = page.iter().map(|r| r.run_id).collect();
        assert_eq!(listed, ids);
        assert_eq!(index.oldest().map(|(_, id)| id), Some(ids[1]));
    }
}

//! What the notifier remembers of recent runs: the commit (author, message: they are
//! only in `source.changed`) and when each stage's events arrived, to say how long each
//! stage took; and what each environment runs, as the deploys' events said, so that a
//! message can say what runs there now. Bounded; per process (another replica may have
//! seen a run's first event, and then this one's messages say less, never something
//! wrong).

use chrono::{DateTime, Utc};
use ferry_shared::event::{ConfigChange, Envelope, Event, RunId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

const CAPACITY: usize = 4096;

/// A release in an environment: its image, and its revision where known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Release {
    pub revision: Option<String>,
    pub image: String,
}

#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub revision: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub reference: Option<String>,
    /// Set when a push to the config repo started the run.
    pub config_change: Option<ConfigChange>,
    /// Routing key → when that event was published.
    pub marks: HashMap<String, DateTime<Utc>>,
    /// Environment → what ran there when this run's deploy started.
    pub before: HashMap<String, Release>,
    /// What the event's environment runs after the event, as far as known.
    pub running: Option<Release>,
}

impl RunInfo {
    /// (stage, environment, milliseconds) for the stages whose start and end are known.
    pub fn durations(&self, env: Option<&str>) -> Vec<(&'static str, u64)> {
        let at = |key: &str| self.marks.get(key).copied();
        let env_key = |kind: &str| env.map(|e| format!("{kind}.{e}"));
        let span = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| match (from, to) {
            (Some(a), Some(b)) if b >= a => Some((b - a).num_milliseconds() as u64),
            _ => None,
        };
        let mut out = Vec::new();
        let mut push = |stage, ms: Option<u64>| {
            if let Some(ms) = ms {
                out.push((stage, ms));
            }
        };
        push("build", span(at("source.changed"), at("image.built")));
        push("push", span(at("image.built"), at("image.pushed")));
        if let Some(pulled) = env_key("image.pulled") {
            push("pull", span(at("image.pushed"), at(&pulled)));
        }
        if let (Some(started), Some(env)) = (env_key("deploy.started"), env) {
            let end = ["deploy.succeeded", "deploy.failed", "deploy.rolled_back"]
                .iter()
                .find_map(|k| at(&format!("{k}.{env}")));
            push("deploy", span(at(&started), end));
        }
        out
    }
}

#[derive(Default)]
pub struct Runs {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<RunId, RunInfo>,
    order: VecDeque<RunId>,
    /// (project, environment) → what runs there, from the last deploy event seen.
    environments: HashMap<(String, String), Release>,
}

impl Runs {
    /// Record an event of a run; returns what is known of the run afterwards.
    pub fn observe(&self, e: &Envelope) -> RunInfo {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.runs.contains_key(&e.run_id) {
            if inner.order.len() >= CAPACITY
                && let Some(old) = inner.order.pop_front()
            {
                inner.runs.remove(&old);
            }
            inner.order.push_back(e.run_id);
        }
        let run = inner.runs.entry(e.run_id).or_default();
        run.marks.entry(e.routing_key()).or_insert(e.time);
        if let Event::SourceChanged(s) = &e.event {
            run.author.clone_from(&s.author);
            run.message.clone_from(&s.message);
            run.reference.clone_from(&s.reference);
            run.config_change.clone_from(&s.config_change);
        }
        if run.revision.is_none() {
            run.revision = e.event.revision().map(str::to_owned);
        }
        let Some(env) = e.environment.clone() else {
            let mut info = run.clone();
            info.running = None;
            return info;
        };
        let release = |revision: &str, image: &str| Release {
            revision: (!revision.is_empty()).then(|| revision.to_owned()),
            image: image.to_owned(),
        };
        let now = match &e.event {
            Event::DeployStarted(d) => {
                if let Some(prev) = &d.previous_image {
                    // The revision is known when the environment's last deploy was seen.
                    let known = inner
                        .environments
                        .get(&(e.project.clone(), env.clone()))
                        .filter(|r| &r.image == prev)
                        .cloned();
                    let before = known.unwrap_or_else(|| release("", prev));
                    if let Some(run) = inner.runs.get_mut(&e.run_id) {
                        run.before.insert(env.clone(), before.clone());
                    }
                    Some(before)
                } else {
                    None
                }
            }
            Event::DeploySucceeded(d) => Some(release(&d.revision, &d.image)),
            Event::DeployRolledBack(d) => Some(release(&d.revision, &d.image)),
            Event::DeploySuperseded(d) if !d.running_image.is_empty() => {
                Some(release("", &d.running_image))
            }
            _ => None,
        };
        let key = (e.project.clone(), env.clone());
        let same_image = |known: Option<&Release>, now: &Release| {
            known.is_some_and(|k| k.image == now.image && now.revision.is_none())
        };
        if let Some(now) = now
            && !same_image(inner.environments.get(&key), &now)
        {
            inner.environments.insert(key.clone(), now);
        }
        if inner.environments.len() > CAPACITY {
            inner.environments.clear();
        }
        let running = inner.environments.get(&key).cloned();
        let run = inner.runs.get(&e.run_id).cloned().unwrap_or_default();
        RunInfo { running, ..run }
    }
}

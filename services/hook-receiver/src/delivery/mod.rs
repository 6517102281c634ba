//! Delivery figures: what each event means for stage durations, deploys and the four
//! delivery metrics (`facts`), counted into Prometheus as the ledger records events
//! (`metrics`), and summarised over a window for the dashboard (`summary`).

pub mod facts;
pub mod metrics;
pub mod summary;

use chrono::{DateTime, Utc};
use facts::{Step, Tracker};
use ferry_ledger::Ledger;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event};
use std::sync::{Arc, Mutex};

/// The kinds delivery figures read back from the ledger: commits, deployments, failed
/// tests and rollbacks (all kept by a prune).
pub const KINDS: &[&str] = &[
    "source.changed",
    "deploy.succeeded",
    "test.failed",
    "deploy.rolled_back",
];

/// What [`where_productions_stood`] reads: which deployment serves in production, and
/// whether it failed (a commit not seen is read with its run when needed).
const SEED_KINDS: &[&str] = &["deploy.succeeded", "test.failed", "deploy.rolled_back"];

/// How many of a production's last events are read: enough to hold its last deployment,
/// the failed test that may follow it and a rollback.
const SEED_EVENTS: usize = 20;

/// Each configured production's last events before `before` (none: now), oldest first,
/// with the production they are in: what the recorder learns at start-up, and the
/// delivery page before its window, to know what was serving.
pub async fn where_productions_stood(
    cfg: &FerryConfig,
    ledger: &Ledger,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<(String, ferry_ledger::FactRow)>, ferry_ledger::LedgerError> {
    let mut out = Vec::new();
    for (name, project) in &cfg.projects {
        let Some(prod) = project.environments.last() else {
            continue;
        };
        let rows = ledger
            .last_facts((name, prod), SEED_KINDS, before, SEED_EVENTS)
            .await?;
        out.extend(rows.into_iter().rev().map(|r| (prod.clone(), r)));
    }
    Ok(out)
}

impl<'a> Step<'a> {
    pub fn of(e: &'a Envelope) -> Step<'a> {
        Step {
            event_id: e.event_id,
            causation_id: e.causation_id,
            run_id: e.run_id.into(),
            project: &e.project,
            environment: e.environment.as_deref(),
            kind: e.kind(),
            time: e.time,
            committed: match &e.event {
                Event::SourceChanged(s) => s.committed,
                _ => None,
            },
        }
    }

    /// An event as the ledger's delivery read gives it (no causation: lists need none).
    pub fn of_row(r: &'a ferry_ledger::FactRow) -> Step<'a> {
        Step {
            event_id: r.event_id,
            causation_id: None,
            run_id: r.run_id,
            project: &r.project,
            environment: r.environment.as_deref(),
            kind: &r.kind,
            time: r.time,
            committed: r.committed,
        }
    }
}

/// The project's production: its last environment.
pub fn production(cfg: &FerryConfig, project: &str) -> Option<String> {
    cfg.projects
        .get(project)
        .and_then(|p| p.environments.last().cloned())
}

/// The recorder's side: every event the ledger recorder sees goes through here, and the
/// ones this replica added to the ledger are counted.
pub struct Delivery {
    cfg: Arc<FerryConfig>,
    tracker: Mutex<Tracker>,
    metrics: metrics::Pipeline,
}

impl Delivery {
    pub fn new(cfg: Arc<FerryConfig>, metrics: metrics::Pipeline) -> Delivery {
        for (name, project) in &cfg.projects {
            metrics.known(name, &project.environments);
        }
        Delivery {
            cfg,
            tracker: Mutex::default(),
            metrics,
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Learn which deployment serves in each production environment from the ledger's
    /// last events there, counting nothing: recording resumes where the ledger stands,
    /// after these events.
    pub async fn seed(&self, ledger: &Ledger) -> Result<usize, ferry_ledger::LedgerError> {
        let rows = where_productions_stood(&self.cfg, ledger, None).await?;
        let mut t = self.tracker();
        for (prod, r) in &rows {
            t.seed(&Step::of_row(r), Some(prod));
        }
        Ok(rows.len())
    }

    /// Follow one event in stream order; count what it means when this replica added it
    /// to the ledger (`new`). An event whose cause or commit was recorded before this
    /// replica started has its run read back from the ledger first.
    pub async fn record(&self, ledger: &Ledger, e: &Envelope, new: bool) {
        let step = Step::of(e);
        let production = production(&self.cfg, &e.project);
        let in_production = production.is_some() && e.environment == production;
        let missing = {
            let t = self.tracker();
            !t.knows_cause_of(&step) || (in_production && !t.knows_commit_of(step.run_id))
        };
        if new && missing {
            match ledger.run_events(&e.run_id.to_string()).await {
                Ok(earlier) => {
                    let mut t = self.tracker();
                    earlier
                        .iter()
                        .filter(|x| x.event_id != e.event_id)
                        .for_each(|x| t.learn(&Step::of(x)));
                }
                // Without them the stage has no duration and the deploy no lead time;
                // everything else is still counted.
                Err(err) => tracing::warn!("a run's earlier events were not read: {err}"),
            }
        }
        let facts = self.tracker().observe(&step, production.as_deref());
        if new {
            for f in &facts {
                self.metrics.count(&e.project, e.environment.as_deref(), f);
            }
        }
    }
}

/// When the window of a summary starts.
pub fn window_start(days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

//! `GET /api/projects/{project}/runs` and `GET /api/runs/{run}`: the last runs and
//! their events, from the run history (and, for a run no longer in memory, the ledger).

use super::{ApiError, Operator, parse_run};
use crate::App;
use axum::Json;
use axum::extract::{Path, Query, State};
use ferry_shared::config::operators::Action;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
pub struct Limit {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

pub async fn list(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(project): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    op.allow(Action::View, &project, None)?;
    if !app.cfg.projects.contains_key(&project) {
        return Err(ApiError::not_found(format!(
            "project `{project}` is not configured"
        )));
    }
    let limit = q.limit.clamp(1, 500);
    let mut runs = app.runs.list(&project, limit);
    // Past memory's end, the ledger's older runs of the project.
    if runs.len() < limit {
        let end = crate::older::memory_end(&app);
        let older = crate::older::runs(
            &app,
            std::slice::from_ref(&project),
            end,
            |_| true,
            limit - runs.len(),
        );
        match tokio::time::timeout(std::time::Duration::from_secs(5), older).await {
            Ok(Ok((more, _))) => runs.extend(more),
            Ok(Err(e)) => tracing::warn!("older runs of {project} not read from the ledger: {e}"),
            Err(_) => tracing::warn!("older runs of {project} not read: the ledger took over 5 s"),
        }
    }
    Ok(Json(json!({ "project": project, "runs": runs })))
}

pub async fn one(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    op.0.can(Action::View)?;
    let run_id = parse_run(&run)?;
    let run = match app.runs.get(run_id) {
        Some(run) => Some(run),
        None => from_ledger(&app, run_id).await,
    };
    match run {
        Some(run) => {
            op.allow(Action::View, &run.project, None)?;
            Ok(Json(json!(run)))
        }
        None => Err(ApiError::not_found(format!(
            "run {run_id} is not in the history (unknown, not started yet, or older than broker.history_max_age and not in a ledger)"
        ))),
    }
}

/// A run older than what this replica keeps in memory, rebuilt from its events in the
/// ledger (when there is one and it answers within 2 s).
pub(crate) async fn from_ledger(app: &App, run_id: uuid::Uuid) -> Option<crate::runs::Run> {
    run_from_events(app, run_id, ledger_events(app, run_id).await?)
}

/// A run's events as published, from the ledger (none without one, or when it does not
/// answer within 2 s).
pub(crate) async fn ledger_events(
    app: &App,
    run_id: uuid::Uuid,
) -> Option<Vec<ferry_shared::event::Envelope>> {
    let ledger = app.ledger.get()?;
    let events = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        ledger.run_events(&run_id.to_string()),
    )
    .await;
    match events {
        Ok(Ok(events)) => Some(events),
        Ok(Err(e)) => {
            tracing::warn!("run {run_id} not read from the ledger: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("run {run_id} not read: the ledger did not answer within 2 s");
            None
        }
    }
}

/// The run those events make up, as memory would hold it.
pub(crate) fn run_from_events(
    app: &App,
    run_id: uuid::Uuid,
    events: impl IntoIterator<Item = ferry_shared::event::Envelope>,
) -> Option<crate::runs::Run> {
    let one = crate::runs::RunIndex::default();
    let last_env = |project: &str| {
        app.cfg
            .projects
            .get(project)
            .and_then(|p| p.environments.last().cloned())
    };
    for e in events {
        one.record(e, last_env);
    }
    one.get(run_id)
}

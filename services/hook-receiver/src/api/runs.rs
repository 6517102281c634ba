//! `GET /api/projects/{project}/runs` and `GET /api/runs/{run}`: the last runs and
//! their events, from the run history.

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
    let runs = app.runs.list(&project, q.limit.clamp(1, 500));
    Ok(Json(json!({ "project": project, "runs": runs })))
}

pub async fn one(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    op.0.can(Action::View)?;
    let run_id = parse_run(&run)?;
    match app.runs.get(run_id) {
        Some(run) => {
            op.allow(Action::View, &run.project, None)?;
            Ok(Json(json!(run)))
        }
        None => Err(ApiError::not_found(format!(
            "run {run_id} is not in the history (unknown, not started yet, or older than broker.history_max_age)"
        ))),
    }
}

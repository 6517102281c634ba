//! `POST /hooks/manual`: start a run of a configured project at a given revision.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {
    pub project: String,
    pub revision: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

pub async fn trigger(
    State(state): State<AppState>,
    body: Result<Json<ManualTrigger>, JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let Json(t) = match body {
        Ok(b) => b,
        Err(e) => return (e.status(), Json(json!({ "error": e.body_text() }))),
    };
    if t.revision.trim().is_empty() {
        return reject(StatusCode::BAD_REQUEST, "revision must not be empty".into());
    }
    let Some(project) = state.cfg.projects.get(&t.project) else {
        return reject(
            StatusCode::NOT_FOUND,
            format!("project `{}` is not configured", t.project),
        );
    };
    let event = Envelope::new_run(
        &t.project,
        Event::SourceChanged(SourceChanged {
            source: "manual".into(),
            repository: project.source.url.clone(),
            reference: None,
            revision: t.revision,
            author: t.author,
            message: t.message,
            changed_paths: vec![],
        }),
    );
    match state.publisher.publish(&event).await {
        Ok(()) => {
            tracing::info!(run_id = %event.run_id, event_id = %event.event_id, project = %event.project, "run started");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "run_ids": [event.run_id] })),
            )
        }
        Err(e) => {
            tracing::warn!(project = %event.project, "trigger not accepted: {e}");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the run could not be stored, try again: {e}"),
            )
        }
    }
}

fn reject(status: StatusCode, reason: String) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": reason })))
}

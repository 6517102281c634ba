//! `POST /hooks/<source>`: authenticate, parse, match, publish, and answer 202 only
//! once every event is confirmed by RabbitMQ.

use crate::plan::{Plan, plan};
use crate::trigger::{Rejection, Source};
use crate::{App, sources};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub async fn receive(
    State(app): State<Arc<App>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = handle(&app, &source, &headers, body).await;
    let counter = match response.status().as_u16() {
        202 => &app.counters.accepted,
        200 => &app.counters.ignored,
        503 => &app.counters.unavailable,
        _ => &app.counters.rejected,
    };
    counter.fetch_add(1, Relaxed);
    response
}

async fn handle(app: &App, source: &str, headers: &HeaderMap, body: Body) -> Response {
    let Some(source) = Source::parse(source) else {
        return reject(Rejection::new(
            StatusCode::NOT_FOUND,
            format!(
                "no webhook source `{source}`: use gitlab, github, gitea, svn, harbor or manual"
            ),
        ));
    };
    let Some(secret) = app.secret(source) else {
        return reject(Rejection::new(
            StatusCode::NOT_FOUND,
            format!(
                "{} webhooks are not enabled: set its secret under [hooks]",
                source.as_str()
            ),
        ));
    };
    let body = match read_body(headers, body, app.cfg.hooks.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return reject(r),
    };
    let parsed = match sources::parse(source, headers, &body, Some(secret)) {
        Ok(p) => p,
        Err(r) => {
            tracing::info!(
                source = source.as_str(),
                status = r.status.as_u16(),
                "hook rejected: {}",
                r.reason
            );
            return reject(r);
        }
    };
    match plan(&app.cfg, parsed) {
        Plan::Reject(r) => reject(r),
        Plan::Ignore(reason) => {
            tracing::info!(source = source.as_str(), "hook ignored: {reason}");
            (StatusCode::OK, Json(json!({ "ignored": reason }))).into_response()
        }
        Plan::Start { delivery, events } => {
            if let Some(ids) = delivery.as_deref().and_then(|d| app.dedup.get(d)) {
                tracing::info!(
                    source = source.as_str(),
                    delivery = delivery.as_deref(),
                    "duplicate delivery: answered from memory"
                );
                return (
                    StatusCode::ACCEPTED,
                    Json(json!({ "run_ids": ids, "duplicate": true })),
                )
                    .into_response();
            }
            let published = join_all(events.iter().map(|e| app.publisher.publish(e))).await;
            if let Some(Err(e)) = published.into_iter().find(Result::is_err) {
                tracing::warn!(source = source.as_str(), "hook not accepted: {e}");
                return reject(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the run could not be stored, try again later: {e}"),
                ));
            }
            let run_ids: Vec<_> = events.iter().map(|e| e.run_id).collect();
            let projects: Vec<_> = events.iter().map(|e| e.project.as_str()).collect();
            for e in &events {
                tracing::info!(run_id = %e.run_id, event_id = %e.event_id, project = %e.project, source = source.as_str(), "run started");
            }
            if let Some(d) = delivery {
                app.dedup.remember(d, run_ids.clone());
            }
            (
                StatusCode::ACCEPTED,
                Json(json!({ "run_ids": run_ids, "projects": projects })),
            )
                .into_response()
        }
    }
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Rejection> {
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes (hooks.max_body_bytes)"),
        )
    };
    let declared =
        crate::trigger::header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

pub fn reject(r: Rejection) -> Response {
    (r.status, Json(json!({ "error": r.reason }))).into_response()
}

pub async fn not_found() -> Response {
    reject(Rejection::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: POST webhooks to /hooks/<source>",
    ))
}

//! `POST /hooks/<source>`: authenticate, parse, match, publish, and answer 202 only
//! once every event is confirmed by RabbitMQ.

use crate::App;
use crate::dedup::Check;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_hooks::plan::{Plan, plan};
use ferry_hooks::trigger::{Rejection, Source};
use ferry_hooks::{message, preauth, sources};
use futures_util::future::join_all;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub async fn receive(
    State(app): State<Arc<App>>,
    Path(source): Path<String>,
    request: Request,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| app.proxies.client(c.0.ip(), request.headers()));
    let (parts, body) = request.into_parts();
    let response = handle(&app, &source, peer, &parts.headers, body).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(ip) = peer
    {
        app.auth_limit.failed(ip);
    }
    let counter = match response.status().as_u16() {
        202 => &app.counters.accepted,
        200 => &app.counters.ignored,
        503 => &app.counters.unavailable,
        _ => &app.counters.rejected,
    };
    counter.inc();
    response
}

async fn handle(
    app: &App,
    source: &str,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
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
    if let Some(left) = peer.and_then(|ip| app.auth_limit.blocked(ip)) {
        return too_many_failures(left);
    }
    // Refused from the headers alone, the body is never read.
    let checked = preauth::check(source, headers, secret);
    let body = match checked {
        Ok(()) => read_body(headers, body, &app.cfg.hooks).await,
        Err(r) => Err(r),
    };
    let parsed = body.and_then(|body| sources::parse(source, headers, &body, Some(secret)));
    let parsed = match parsed {
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
    match plan(&app.cfg, parsed, &app.runs) {
        Plan::Reject(r) => reject(r),
        Plan::Ignore(reason) => {
            tracing::info!(source = source.as_str(), "hook ignored: {reason}");
            (StatusCode::OK, Json(json!({ "ignored": reason }))).into_response()
        }
        Plan::Start {
            delivery,
            mut events,
        } => {
            message::bound(&mut events);
            let run_ids: Vec<_> = events.iter().map(|e| e.run_id.into()).collect();
            // One step: of two identical deliveries arriving together, one publishes.
            let reservation = match &delivery {
                None => None,
                Some(d) => match app.dedup.check_and_reserve(d, run_ids.clone()).await {
                    Check::New(r) => match app.ledger.get() {
                        // Taken before, on another replica or before a restart.
                        Some(ledger) if crate::ledger::recorded_before(ledger, &events).await => {
                            r.published();
                            return duplicate(source.as_str(), d, &run_ids, "found in the ledger");
                        }
                        _ => Some(r),
                    },
                    Check::Seen(ids) => {
                        return duplicate(source.as_str(), d, &ids, "answered from memory");
                    }
                },
            };
            let published = join_all(events.iter().map(|e| app.publisher.publish(e))).await;
            if let Some(Err(e)) = published.into_iter().find(Result::is_err) {
                tracing::warn!(source = source.as_str(), "hook not accepted: {e}");
                return reject(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the run could not be stored, try again later: {e}"),
                ));
            }
            let projects: Vec<_> = events.iter().map(|e| e.project.as_str()).collect();
            for e in &events {
                tracing::info!(run_id = %e.run_id, event_id = %e.event_id, project = %e.project, source = source.as_str(), "run started");
            }
            if let Some(r) = reservation {
                r.published();
            }
            (
                StatusCode::ACCEPTED,
                Json(json!({ "run_ids": run_ids, "projects": projects })),
            )
                .into_response()
        }
    }
}

/// A delivery taken before: its run ids again, nothing published.
fn duplicate(source: &str, delivery: &str, run_ids: &[uuid::Uuid], how: &str) -> Response {
    tracing::info!(source, delivery, "duplicate delivery: {how}");
    (
        StatusCode::ACCEPTED,
        Json(json!({ "run_ids": run_ids, "duplicate": true })),
    )
        .into_response()
}

/// The body, up to `hooks.max_body_bytes`, if it arrives within `hooks.body_timeout_secs`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    hooks: &ferry_shared::config::HooksConfig,
) -> Result<Bytes, Rejection> {
    let limit = hooks.max_body_bytes;
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes (hooks.max_body_bytes)"),
        )
    };
    let declared = ferry_hooks::trigger::header(headers, "content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let timeout = Duration::from_secs(hooks.body_timeout_secs);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (hooks.body_timeout_secs)",
                timeout.as_secs()
            ),
        )),
    }
}

/// 429 with when to try again.
fn too_many_failures(left: Duration) -> Response {
    let (secs, why) = crate::auth_limit::refusal(left, "check the webhook's secret");
    let mut response = reject(Rejection::new(StatusCode::TOO_MANY_REQUESTS, why));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, secs.into());
    response
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

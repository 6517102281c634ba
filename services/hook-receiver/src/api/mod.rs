//! The operator API behind `ferry approve | reject | rollback | deploy | scale | runs`.
//! Every request carries `Authorization: Bearer <token>` of an `[operators.<name>]`
//! entry; the name is recorded in the events it causes (who approved, who rolled
//! back). Every route checks the operator's scope (`projects`, `environments`, `can`)
//! before it does anything: 403 names what is missing. Answers are JSON; errors are
//! `{"error": "..."}` with a 4xx/5xx status.

pub(crate) mod decide;
pub(crate) mod deploy;
mod runs;

pub(crate) use runs::{ledger_events, run_from_events};
mod scale;

use crate::App;
use axum::Json;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_shared::config::operators::{Access, Action, Denied};
use serde_json::json;
use std::sync::Arc;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/api/runs/{run}", get(runs::one))
        .route("/api/runs/{run}/approve", post(decide::approve))
        .route("/api/runs/{run}/reject", post(decide::reject))
        .route("/api/projects/{project}/runs", get(runs::list))
        .route("/api/projects/{project}/rollback", post(deploy::rollback))
        .route("/api/projects/{project}/deploy", post(deploy::deploy))
        .route("/api/projects/{project}/scale", post(scale::scale))
}

/// An API error: status and a reason a person can act on.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl ApiError {
    pub fn bad_request(why: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, why.into())
    }

    pub fn not_found(why: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, why.into())
    }

    pub fn unavailable(why: impl Into<String>) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, why.into())
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        Self(StatusCode::FORBIDDEN, d.to_string())
    }
}

/// The operator a request comes from, with their scope.
pub struct Operator(pub Arc<Access>);

impl Operator {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// 403 unless the operator may do `action` on `project` (in `environment`).
    pub fn allow(
        &self,
        action: Action,
        project: &str,
        environment: Option<&str>,
    ) -> Result<(), ApiError> {
        self.0.allow(action, project, environment).map_err(|d| {
            tracing::info!(operator = %self.0.name, %action, project, environment, "refused: {d}");
            ApiError::from(d)
        })
    }
}

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        if app.operators.is_empty() {
            return Err(ApiError::not_found(
                "the operator API is disabled: add an [operators.<name>] entry with a token",
            ));
        }
        // Token guessing here is limited like on the webhooks: one count per address.
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| app.proxies.client(c.0.ip(), &parts.headers));
        if let Some(left) = peer.and_then(|ip| app.auth_limit.blocked(ip)) {
            let (_, why) = crate::auth_limit::refusal(left, "check FERRY_TOKEN");
            return Err(ApiError(StatusCode::TOO_MANY_REQUESTS, why));
        }
        let failed = |why: &str| {
            if let Some(ip) = peer {
                app.auth_limit.failed(ip);
            }
            ApiError(StatusCode::UNAUTHORIZED, why.to_owned())
        };
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                failed(
                    "missing `Authorization: Bearer <token>` (set FERRY_TOKEN for the ferry CLI)",
                )
            })?;
        match app.operators.find(token.trim()) {
            Some(access) => Ok(Operator(access)),
            None => Err(failed(
                "the token is not an operator's token; check FERRY_TOKEN against [operators]",
            )),
        }
    }
}

/// A JSON body (an empty one is the default), with a JSON error instead of axum's
/// plain-text one.
pub fn parse_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
}

pub fn parse_run(run: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(run).map_err(|_| {
        ApiError::bad_request(format!(
            "`{run}` is not a run id (a UUID from `ferry runs`)"
        ))
    })
}

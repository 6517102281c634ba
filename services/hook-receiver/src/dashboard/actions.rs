//! The dashboard's actions: each checks the session's CSRF token, then goes through
//! the operator API's own handler (same scopes, rules and events; the operator's name
//! is recorded as the one who acted), and answers with a page.

use super::login::{form_fields, same_origin};
use super::{Signed, layout};
use crate::App;
use crate::api::{self, ApiError, Operator};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The form's fields, once its origin and CSRF token are right.
async fn checked(
    app: &App,
    signed: &Signed,
    request: Request,
) -> Result<HashMap<String, String>, Response> {
    let refuse = |why: &str| layout::problem(signed.lang, StatusCode::FORBIDDEN, why);
    if !same_origin(request.headers()) {
        return Err(refuse("an action posted from another site is refused"));
    }
    let Some(fields) = form_fields(request.into_body()).await else {
        return Err(layout::problem(
            signed.lang,
            StatusCode::BAD_REQUEST,
            "the form could not be read",
        ));
    };
    let token = fields.get("csrf").map_or("", String::as_str);
    if !app.sessions.csrf_ok(&signed.session, token) {
        tracing::info!(operator = %signed.session.access.name, "dashboard action refused: bad CSRF token");
        return Err(refuse(
            "the form's CSRF token is missing or wrong: reload the page and try again",
        ));
    }
    Ok(fields)
}

fn given<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The API's refusal as a page, with its status and reason.
fn refused(signed: &Signed, e: ApiError) -> Response {
    layout::problem(signed.lang, e.0, &e.1)
}

fn to_run(answer: &Value, done: &str) -> Response {
    match answer.get("run_id").and_then(Value::as_str) {
        Some(id) => Redirect::to(&format!("/runs/{id}?done={done}")).into_response(),
        None => Redirect::to(&format!("/?done={done}")).into_response(),
    }
}

async fn decide(
    app: Arc<App>,
    signed: Signed,
    run: String,
    request: Request,
    approve: bool,
) -> Response {
    let fields = match checked(&app, &signed, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let body = match given(&fields, "comment") {
        Some(c) => json!({ "comment": c }),
        None => json!({}),
    };
    let op = Operator(signed.session.access.clone());
    let body = Bytes::from(body.to_string());
    let answer = if approve {
        api::decide::approve(State(app), op, Path(run), body).await
    } else {
        api::decide::reject(State(app), op, Path(run), body).await
    };
    match answer {
        Ok(axum::Json(v)) => to_run(&v, if approve { "approved" } else { "rejected" }),
        Err(e) => refused(&signed, e),
    }
}

pub async fn approve(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(run): Path<String>,
    request: Request,
) -> Response {
    decide(app, signed, run, request, true).await
}

pub async fn reject(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(run): Path<String>,
    request: Request,
) -> Response {
    decide(app, signed, run, request, false).await
}

pub async fn rollback(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(project): Path<String>,
    request: Request,
) -> Response {
    let fields = match checked(&app, &signed, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut body = json!({ "environment": given(&fields, "environment").unwrap_or("") });
    if let Some(to) = given(&fields, "to") {
        body["to"] = json!(to);
    }
    let op = Operator(signed.session.access.clone());
    match api::deploy::rollback(State(app), op, Path(project), Bytes::from(body.to_string())).await
    {
        Ok((_, axum::Json(v))) => to_run(&v, "rollback"),
        Err(e) => refused(&signed, e),
    }
}

pub async fn deploy(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(project): Path<String>,
    request: Request,
) -> Response {
    let fields = match checked(&app, &signed, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let body = json!({ "revision": given(&fields, "revision").unwrap_or("") });
    let op = Operator(signed.session.access.clone());
    match api::deploy::deploy(State(app), op, Path(project), Bytes::from(body.to_string())).await {
        Ok((_, axum::Json(v))) => to_run(&v, "deploy"),
        Err(e) => refused(&signed, e),
    }
}

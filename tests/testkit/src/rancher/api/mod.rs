//! The HTTP API: the `v2-beta` routes of one project, and what every request goes through
//! (the request log, basic auth, misbehaviour, the project id).

mod containers;
mod hosts;
mod services;
mod stacks;

use super::errors::{Invalid, error, not_found};
use super::state::{Shared, Sim, lock};
use super::{ACCESS_KEY, PROJECT, SECRET_KEY};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use containers::{get_instance, list_instances};
use hosts::{get_host, list_hosts};
use serde_json::{Map, Value};
use services::{
    act, create_service, delete_service, list_services, read, service_instances, update_service,
};
use stacks::{create_stack, delete_stack, get_stack, list_stacks, stack_services, update_stack};

pub(super) fn router(shared: Shared) -> Router {
    let mut r = Router::new();
    // Every route also with a trailing slash: the API spec says it must not matter.
    for (path, route) in [
        ("/v2-beta/projects/{project}/hosts", get(list_hosts)),
        ("/v2-beta/projects/{project}/hosts/{id}", get(get_host)),
        (
            "/v2-beta/projects/{project}/stacks",
            get(list_stacks).post(create_stack),
        ),
        (
            "/v2-beta/projects/{project}/stacks/{id}",
            get(get_stack).put(update_stack).delete(delete_stack),
        ),
        (
            "/v2-beta/projects/{project}/stacks/{id}/services",
            get(stack_services),
        ),
        (
            "/v2-beta/projects/{project}/services",
            get(list_services).post(create_service),
        ),
        (
            "/v2-beta/projects/{project}/services/{id}",
            get(read)
                .put(update_service)
                .post(act)
                .delete(delete_service),
        ),
        (
            "/v2-beta/projects/{project}/services/{id}/instances",
            get(service_instances),
        ),
        (
            "/v2-beta/projects/{project}/containers",
            get(list_instances),
        ),
        (
            "/v2-beta/projects/{project}/containers/{id}",
            get(get_instance),
        ),
        ("/v2-beta/projects/{project}/instances", get(list_instances)),
        (
            "/v2-beta/projects/{project}/instances/{id}",
            get(get_instance),
        ),
    ] {
        r = r
            .route(path, route.clone())
            .route(&format!("{path}/"), route);
    }
    r.fallback(async || not_found())
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// Log every request, and send `X-Api-Schemas` as every API response must.
async fn record(State(shared): State<Shared>, req: Request, next: Next) -> Response {
    let line = (
        req.method().to_string(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| req.uri().path().to_owned()),
    );
    let schemas = {
        let mut sim = lock(&shared);
        sim.requests.push(line);
        format!("{}/v2-beta/schemas", sim.base)
    };
    let mut response = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&schemas) {
        response.headers_mut().insert("x-api-schemas", v);
    }
    response
}

/// Basic auth, misbehaviour and the project id, checked before anything else.
fn gate(sim: &mut Sim, headers: &HeaderMap, project: &str) -> Option<Response> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCESS_KEY}:{SECRET_KEY}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    if sim.misbehave.fail_requests > 0 {
        sim.misbehave.fail_requests -= 1;
        return Some(error(StatusCode::INTERNAL_SERVER_ERROR, "ServerError"));
    }
    if project != PROJECT {
        return Some(error(StatusCode::NOT_FOUND, "NotFound"));
    }
    None
}

/// The request body as a JSON object (an empty body is an empty object).
fn body_object(body: &Bytes) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Invalid("InvalidBodyContent", "")),
    }
}

fn created(url: String, resource: Value) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(resource)).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert("location", v);
    }
    response
}

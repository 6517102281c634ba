//! `services`: create, read, update (`PUT`) and remove services, their actions
//! (`?action=upgrade` and the rest), and list a service's instances.

use super::{body_object, created, gate};
use crate::rancher::PROJECT;
use crate::rancher::errors::{action_not_available, error, invalid, invalid_state, not_found};
use crate::rancher::filters::{collection, parse_query};
use crate::rancher::lifecycle::{UPDATE_STATES, actions_for};
use crate::rancher::ops::{Op, spawn_op};
use crate::rancher::state::{Service, Shared, lock, now_ms};
use crate::rancher::validate::{check_dns_name, check_launch, check_name, check_scale};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;

pub(super) async fn list_services(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let items = sim.services.iter().map(|s| sim.service_json(s)).collect();
    collection(
        &sim,
        "service",
        &format!("/v2-beta/projects/{PROJECT}/services"),
        query.as_deref(),
        items,
    )
}

pub(super) async fn create_service(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // Field by field first, then what is required (gdapi's `ValidationHandler`), then the
    // service filter's checks (`ServiceValidationFilter`).
    let name = match check_name(body.get("name")) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let scale = match check_scale(body.get("scale")) {
        Ok(s) => s.unwrap_or(1),
        Err(e) => return e.into_response(),
    };
    let stack = match body.get("stackId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match sim.stack(s) {
            Some(st) if st.removed.is_none() && st.state != "removing" => Some(st.id.clone()),
            _ => return invalid("InvalidReference", "stackId"),
        },
        Some(_) => return invalid("InvalidReference", "stackId"),
    };
    let launch = match body.get("launchConfig") {
        None | Some(Value::Null) => None,
        Some(Value::Object(l)) => Some(l.clone()),
        Some(_) => return invalid("InvalidFormat", "launchConfig"),
    };
    let Some(name) = name else {
        return invalid("MissingRequired", "name");
    };
    let Some(stack) = stack else {
        return invalid("MissingRequired", "stackId");
    };
    let Some(launch) = launch else {
        return invalid("MissingRequired", "launchConfig");
    };
    if let Err(e) = check_dns_name(&name) {
        return e.into_response();
    }
    let taken = sim
        .services
        .iter()
        .any(|s| s.stack == stack && s.removed.is_none() && s.name.eq_ignore_ascii_case(&name));
    if taken {
        return invalid("NotUnique", "name");
    }
    let launch = match check_launch(&launch) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let start = body
        .get("startOnCreate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = format!("1s{}", sim.next_service);
    sim.next_service += 1;
    let service = Service {
        id: id.clone(),
        uuid: uuid::Uuid::new_v4().to_string(),
        name,
        stack,
        description: body.get("description").cloned().unwrap_or(Value::Null),
        state: "registering".into(),
        scale,
        launch,
        previous: None,
        start_on_create: start,
        current: vec![],
        kept: vec![],
        created: now_ms(),
        removed: None,
        ops: Arc::default(),
    };
    let resource = sim.service_json(&service);
    sim.services.push(service);
    let url = sim.url("services", &id);
    let response = created(url, resource);
    drop(sim);
    if start {
        spawn_op(&shared, &id, Op::Create { start }, "activating", "active");
    } else {
        spawn_op(
            &shared,
            &id,
            Op::Create { start },
            "registering",
            "inactive",
        );
    }
    response
}

pub(super) async fn read(
    State(shared): State<Shared>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    match sim.service(&service) {
        Some(s) => axum::Json(sim.service_json(s)).into_response(),
        None => not_found(),
    }
}

/// `PUT` on the service: `scale`, `name`, `description`; other fields are ignored.
pub(super) async fn update_service(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut sim = lock(&shared);
        if let Some(r) = gate(&mut sim, &headers, &project) {
            return r;
        }
        if sim.service(&id).is_none() {
            return not_found();
        }
    }
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    update(&shared, &id, &body, StatusCode::OK)
}

fn update(shared: &Shared, id: &str, body: &Map<String, Value>, status: StatusCode) -> Response {
    let mut sim = lock(shared);
    let Some(s) = sim.service(id) else {
        return not_found();
    };
    let (state, stack) = (s.state.clone(), s.stack.clone());
    let scale = match check_scale(body.get("scale")) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let name = match check_name(body.get("name")) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    if let Some(name) = &name {
        if let Err(e) = check_dns_name(name) {
            return e.into_response();
        }
        let taken = sim.services.iter().any(|o| {
            o.id != id
                && o.stack == stack
                && o.removed.is_none()
                && o.name.eq_ignore_ascii_case(name)
        });
        if taken {
            return invalid("NotUnique", "name");
        }
    }
    if !UPDATE_STATES.contains(&state.as_str()) {
        return invalid_state(format!("service.update cannot start in state {state}"));
    }
    let (transitional, done) = match state.as_str() {
        "active" => ("updating-active", "active"),
        "inactive" => ("updating-inactive", "inactive"),
        other => (other, other),
    };
    let s = sim.service_mut(id).expect("found above");
    if let Some(scale) = scale {
        s.scale = scale;
    }
    if let Some(name) = name {
        s.name = name;
    }
    if let Some(d) = body.get("description") {
        s.description = d.clone();
    }
    s.state = transitional.to_owned();
    let s = sim.service(id).expect("found above");
    let reply = sim.service_json(s);
    drop(sim);
    spawn_op(shared, id, Op::Update, transitional, done);
    (status, axum::Json(reply)).into_response()
}

pub(super) async fn delete_service(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    let Some(s) = sim.service(&id) else {
        return not_found();
    };
    if actions_for(&s.state).contains(&"remove") {
        drop(sim);
        remove_service(&shared, &id, StatusCode::OK)
    } else {
        axum::Json(sim.service_json(s)).into_response()
    }
}

fn remove_service(shared: &Shared, id: &str, status: StatusCode) -> Response {
    let mut sim = lock(shared);
    let Some(s) = sim.service_mut(id) else {
        return not_found();
    };
    s.state = "removing".into();
    let s = sim.service(id).expect("found above");
    let reply = sim.service_json(s);
    drop(sim);
    spawn_op(shared, id, Op::Remove, "removing", "removed");
    (status, axum::Json(reply)).into_response()
}

pub(super) async fn act(
    State(shared): State<Shared>,
    Path((project, service)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    let Some(state) = sim.service(&service).map(|s| s.state.clone()) else {
        return not_found();
    };
    // `?action=upgrade`, or the spec's shorter `?upgrade`.
    let params = parse_query(query.as_deref());
    let action = params
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            params
                .iter()
                .find(|(_, v)| v.is_empty())
                .map(|(k, _)| k.clone())
        })
        .unwrap_or_default();
    let refused = sim.misbehave.refuse_actions > 0;
    sim.misbehave.refuse_actions = sim.misbehave.refuse_actions.saturating_sub(1);
    if refused || !actions_for(&state).contains(&action.as_str()) {
        return action_not_available(&action, &state);
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (op, transitional, next) = match action.as_str() {
        "upgrade" => {
            let strategy = &body["inServiceStrategy"];
            let Some(launch) = strategy["launchConfig"].as_object() else {
                return invalid("MissingRequired", "inServiceStrategy");
            };
            let launch = match check_launch(launch) {
                Ok(l) => l,
                Err(e) => return e.into_response(),
            };
            let s = sim.service_mut(&service).expect("found above");
            s.previous = Some(std::mem::replace(&mut s.launch, launch));
            let op = Op::Upgrade {
                stuck: std::mem::take(&mut sim.misbehave.stuck_upgrading),
                start_first: strategy["startFirst"].as_bool().unwrap_or(false),
                was_active: state != "inactive",
            };
            (op, "upgrading", "upgraded")
        }
        "finishupgrade" => (Op::FinishUpgrade, "finishing-upgrade", "active"),
        "rollback" => (Op::Rollback, "rolling-back", "active"),
        "cancelupgrade" => (Op::CancelUpgrade, "canceling-upgrade", "canceled-upgrade"),
        "activate" => (Op::Activate, "activating", "active"),
        "deactivate" => (Op::Deactivate, "deactivating", "inactive"),
        "restart" => (Op::Restart, "restarting", "active"),
        "remove" => {
            drop(sim);
            return remove_service(&shared, &service, StatusCode::ACCEPTED);
        }
        "update" => {
            drop(sim);
            let body = body.as_object().cloned().unwrap_or_default();
            return update(&shared, &service, &body, StatusCode::ACCEPTED);
        }
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "InvalidAction"),
    };
    let s = sim.service_mut(&service).expect("found above");
    s.state = transitional.to_owned();
    let s = sim.service(&service).expect("found above");
    let reply = sim.service_json(s);
    drop(sim);
    // The upgrade's own final state is set by its work (it may be canceled meanwhile).
    let done = if matches!(op, Op::Upgrade { .. }) {
        transitional
    } else {
        next
    };
    spawn_op(&shared, &service, op, transitional, done);
    (StatusCode::ACCEPTED, axum::Json(reply)).into_response()
}

pub(super) async fn service_instances(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    let Some(s) = sim.service(&id) else {
        return not_found();
    };
    let items = sim.instances_of(s).map(|i| sim.instance_json(i)).collect();
    collection(
        &sim,
        "instance",
        &format!("/v2-beta/projects/{PROJECT}/services/{id}/instances"),
        query.as_deref(),
        items,
    )
}

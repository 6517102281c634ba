//! `stacks`: create, read, rename and remove stacks (removing one removes its services),
//! and list a stack's services.

use super::{body_object, created, gate};
use crate::rancher::PROJECT;
use crate::rancher::errors::{invalid, not_found};
use crate::rancher::filters::collection;
use crate::rancher::ops::{Op, run_op, settle};
use crate::rancher::state::{Shared, Stack, lock, now_ms};
use crate::rancher::validate::check_name;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::Duration;

pub(super) async fn list_stacks(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let items = sim.stacks.iter().map(|s| sim.stack_json(s)).collect();
    collection(
        &sim,
        "stack",
        &format!("/v2-beta/projects/{PROJECT}/stacks"),
        query.as_deref(),
        items,
    )
}

pub(super) async fn create_stack(
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
    let name = match check_name(body.get("name")) {
        Ok(Some(n)) => n,
        Ok(None) => return invalid("MissingRequired", "name"),
        Err(e) => return e.into_response(),
    };
    // `StackValidationFilter`.
    if name.starts_with('-') || name.ends_with('-') {
        return invalid("InvalidCharacters", "name");
    }
    if sim.stack_named(&name).is_some() {
        return invalid("NotUnique", "name");
    }
    let id = format!("1st{}", sim.next_stack);
    sim.next_stack += 1;
    let stack = Stack {
        id: id.clone(),
        uuid: uuid::Uuid::new_v4().to_string(),
        name,
        description: body.get("description").cloned().unwrap_or(Value::Null),
        state: "active".into(),
        start_on_create: body
            .get("startOnCreate")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        created: now_ms(),
        removed: None,
    };
    let resource = sim.stack_json(&stack);
    sim.stacks.push(stack);
    let url = sim.url("stacks", &id);
    created(url, resource)
}

pub(super) async fn get_stack(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    match sim.stack(&id) {
        Some(st) => axum::Json(sim.stack_json(st)).into_response(),
        None => not_found(),
    }
}

pub(super) async fn update_stack(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let Some(current) = sim.stack(&id).map(|s| s.name.clone()) else {
        return not_found();
    };
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let name = match check_name(body.get("name")) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    if let Some(name) = &name
        && !name.eq_ignore_ascii_case(&current)
    {
        if name.starts_with('-') || name.ends_with('-') {
            return invalid("InvalidCharacters", "name");
        }
        if sim.stack_named(name).is_some() {
            return invalid("NotUnique", "name");
        }
    }
    let Some(st) = sim.stacks.iter_mut().find(|s| s.id == id) else {
        return not_found();
    };
    if let Some(name) = name {
        st.name = name;
    }
    if let Some(d) = body.get("description") {
        st.description = d.clone();
    }
    let st = sim.stack(&id).expect("found above");
    axum::Json(sim.stack_json(st)).into_response()
}

pub(super) async fn delete_stack(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let Some(st) = sim.stacks.iter_mut().find(|s| s.id == id) else {
        return not_found();
    };
    if st.removed.is_none() && st.state != "removing" {
        st.state = "removing".into();
        let services: Vec<String> = sim
            .services
            .iter_mut()
            .filter(|s| s.stack == id && s.removed.is_none())
            .map(|s| {
                s.state = "removing".into();
                s.id.clone()
            })
            .collect();
        let delay = Duration::from_millis(sim.misbehave.transition_ms);
        let (worker, id) = (shared.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(delay);
            for sid in services {
                let Some(ops) = lock(&worker).service(&sid).map(|s| s.ops.clone()) else {
                    continue;
                };
                let _serial = ops.lock().unwrap_or_else(|e| e.into_inner());
                run_op(&worker, &sid, Op::Remove);
                settle(&worker, &sid, "removing", "removed");
            }
            let mut sim = lock(&worker);
            if let Some(st) = sim.stacks.iter_mut().find(|s| s.id == id) {
                st.state = "removed".into();
                st.removed = Some(now_ms());
            }
        });
    }
    let st = sim.stack(&id).expect("found above");
    axum::Json(sim.stack_json(st)).into_response()
}

pub(super) async fn stack_services(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    if sim.stack(&id).is_none() {
        return not_found();
    }
    let items = sim
        .services
        .iter()
        .filter(|s| s.stack == id)
        .map(|s| sim.service_json(s))
        .collect();
    collection(
        &sim,
        "service",
        &format!("/v2-beta/projects/{PROJECT}/stacks/{id}/services"),
        query.as_deref(),
        items,
    )
}

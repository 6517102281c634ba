//! `containers` (and `instances`, the same resources by their base type): read only.

use super::gate;
use crate::rancher::errors::not_found;
use crate::rancher::filters::collection;
use crate::rancher::state::{Shared, lock};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

pub(super) async fn list_instances(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    let items = sim.instances.iter().map(|i| sim.instance_json(i)).collect();
    let path = uri.path().trim_end_matches('/').to_owned();
    let resource_type = if path.ends_with("/containers") {
        "container"
    } else {
        "instance"
    };
    collection(&sim, resource_type, &path, query.as_deref(), items)
}

pub(super) async fn get_instance(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(r) = gate(&mut sim, &headers, &project) {
        return r;
    }
    match sim.instance(&id) {
        Some(i) => axum::Json(sim.instance_json(i)).into_response(),
        None => not_found(),
    }
}

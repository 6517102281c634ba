//! `hosts`: the environment's hosts (read only).

use super::gate;
use crate::rancher::PROJECT;
use crate::rancher::errors::not_found;
use crate::rancher::filters::collection;
use crate::rancher::state::{Shared, lock};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

/// The environment's hosts, as Rancher lists them.
pub(super) async fn list_hosts(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    let items = (0..sim.hosts.len()).map(|n| sim.host_json(n)).collect();
    collection(
        &sim,
        "host",
        &format!("/v2-beta/projects/{PROJECT}/hosts"),
        query.as_deref(),
        items,
    )
}

pub(super) async fn get_host(
    State(shared): State<Shared>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&shared);
    if let Some(refused) = gate(&mut sim, &headers, &project) {
        return refused;
    }
    match sim.hosts.iter().position(|h| h.id == id) {
        Some(n) => axum::Json(sim.host_json(n)).into_response(),
        None => not_found(),
    }
}

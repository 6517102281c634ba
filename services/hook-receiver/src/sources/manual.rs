//! Manual triggers: `POST /hooks/manual` with `Authorization: Bearer <hooks.manual_token>`
//! and `{"project": "...", "revision": "..."}`.

use crate::trigger::{Manual, Parsed, Rejection, json, require_json};
use axum::http::HeaderMap;
use ferry_shared::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    project: String,
    revision: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    super::check_bearer(headers, secret)?;
    require_json(headers)?;
    let p: Payload = json(body)?;
    if p.revision.trim().is_empty() || p.revision.trim() == "0" {
        return Err(Rejection::bad_request("revision must not be empty or zero"));
    }
    if p.project.trim().is_empty() {
        return Err(Rejection::bad_request("project must not be empty"));
    }
    Ok(Parsed::Manual(Manual {
        project: p.project,
        revision: p.revision.trim().to_owned(),
        author: p.author,
        message: p.message,
    }))
}

//! Manual triggers: `POST /hooks/manual` with `Authorization: Bearer <hooks.manual_token>`
//! and `{"project": "...", "revision": "..."}`.

use crate::trigger::{Manual, Parsed, Rejection, json, require_json};
use ferry_shared::revision::Revision;
use ferry_shared::secret::Secret;
use http::HeaderMap;
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
    let revision = p.revision.trim();
    if revision.is_empty() {
        return Err(Rejection::bad_request("revision must not be empty"));
    }
    // Valid for some source kind; which one is checked against the project (`plan`).
    if let (Err(svn), Err(git)) = (
        Revision::parse("svn", revision),
        Revision::parse("git", revision),
    ) {
        return Err(Rejection::bad_request(format!(
            "{svn}; for a git project, {git}"
        )));
    }
    if p.project.trim().is_empty() {
        return Err(Rejection::bad_request("project must not be empty"));
    }
    Ok(Parsed::Manual(Manual {
        project: p.project,
        revision: revision.to_owned(),
        author: p.author,
        message: p.message,
    }))
}

/// The revision of a manual trigger for `project`, per its source kind: an SVN number,
/// or a full commit id or branch/tag name for git (the builder resolves names).
pub fn revision_for(
    project: &ferry_shared::config::ProjectConfig,
    text: &str,
) -> Result<String, Rejection> {
    Revision::parse(project.source.kind.as_str(), text)
        .map(|r| r.to_string())
        .map_err(|e| Rejection::bad_request(format!("{e} ({} source)", project.source.kind)))
}

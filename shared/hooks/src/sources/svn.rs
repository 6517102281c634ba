//! Subversion: the JSON our post-commit script (`deploy/hooks/svn-post-commit`) posts,
//! with `Authorization: Bearer <hooks.svn_token>`.

use crate::trigger::{Parsed, Push, Rejection, Source, json, require_json};
use ferry_shared::revision::SvnRevision;
use ferry_shared::secret::Secret;
use http::HeaderMap;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(default)]
    repository_uuid: Option<String>,
    #[serde(default)]
    repository_url: Option<String>,
    /// A number, or a string of digits (shell scripts send either).
    revision: serde_json::Value,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    changed_paths: Vec<String>,
    #[serde(default)]
    date: Option<String>,
}

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    super::check_bearer(headers, secret)?;
    require_json(headers)?;
    let p: Payload = json(body)?;
    let revision = match &p.revision {
        serde_json::Value::Number(n) => n.as_u64().and_then(SvnRevision::new),
        serde_json::Value::String(s) => SvnRevision::parse(s.trim()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        Rejection::bad_request(format!(
            "revision must be a positive number, got {}",
            p.revision
        ))
    })?;
    let uuid = p.repository_uuid.filter(|u| !u.trim().is_empty());
    let url = p.repository_url.filter(|u| !u.trim().is_empty());
    if uuid.is_none() && url.is_none() {
        return Err(Rejection::bad_request(
            "repository_uuid or repository_url is required",
        ));
    }
    // The same commit reported twice is the same delivery.
    let delivery = format!(
        "{}@{revision}",
        uuid.as_deref().or(url.as_deref()).unwrap_or_default()
    );
    Ok(Parsed::Push(Push {
        source: Source::Svn,
        repository: vec![],
        repository_urls: url.into_iter().collect(),
        repository_uuid: uuid,
        reference: None,
        default_branch: None,
        revision: revision.to_string(),
        author: p.author.filter(|a| !a.is_empty()),
        author_email: None,
        // svnserve/Apache authenticated the committer; `author` is theirs.
        pusher: None,
        message: p.message,
        changed_paths: p
            .changed_paths
            .into_iter()
            .map(|c| {
                if c.starts_with('/') {
                    c
                } else {
                    format!("/{c}")
                }
            })
            .collect(),
        paths_complete: true,
        committed_at: p.date.as_deref().and_then(svn_date),
        delivery_id: Some(delivery),
    }))
}

/// `svnlook date` prints `2026-11-26 12:14:52 +0000 (Thu, 26 Nov 2026)`: as RFC 3339.
fn svn_date(text: &str) -> Option<String> {
    let head = text.get(..25)?;
    chrono::DateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|d| d.to_rfc3339())
}

#[cfg(test)]
mod tests {
    #[test]
    fn svnlook_dates_are_read() {
        assert_eq!(
            super::svn_date("2026-11-26 12:14:52 +0000 (Thu, 26 Nov 2026)").as_deref(),
            Some("2026-11-26T12:14:52+00:00")
        );
        assert_eq!(super::svn_date("yesterday"), None);
    }
}

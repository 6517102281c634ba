//! A plain git server: the JSON our post-receive script (`deploy/hooks/git-post-receive`)
//! posts for each pushed branch or tag, with `Authorization: Bearer <hooks.git_token>`.
//! It serves both code repositories (`source.kind = "git"`) and config repositories
//! (`config_repo`) hosted without a forge.

use crate::trigger::{Parsed, Push, Reference, Rejection, Source, json, require_json};
use ferry_shared::revision::CommitId;
use ferry_shared::secret::Secret;
use http::HeaderMap;
use serde::Deserialize;

/// git's all-zero id: the `after` of a deleted ref, the `before` of a new one.
const ZERO: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// The URL clients clone from, as in `source.url` or `config_repo.url`.
    repository_url: String,
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    before: Option<String>,
    after: String,
    /// The account the git server authenticated for the push (e.g. `$GL_USERNAME`,
    /// the SSH user).
    #[serde(default)]
    pusher: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    author_email: Option<String>,
    #[serde(default)]
    message: Option<String>,
    /// Files changed between `before` and `after` (`git diff --name-only`).
    #[serde(default)]
    changed_paths: Vec<String>,
    /// False when the script could not list them (a new branch): path filters then
    /// let the push through.
    #[serde(default = "yes")]
    paths_complete: bool,
    #[serde(default)]
    date: Option<String>,
}

fn yes() -> bool {
    true
}

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    super::check_bearer(headers, secret)?;
    require_json(headers)?;
    let p: Payload = json(body)?;
    if p.repository_url.trim().is_empty() {
        return Err(Rejection::bad_request("repository_url is required"));
    }
    let Some(reference) = Reference::from_git_ref(p.reference.trim())? else {
        return Ok(Parsed::Ignored {
            reason: format!("ref `{}` is neither a branch nor a tag", p.reference),
        });
    };
    let after = p.after.trim();
    if after == ZERO {
        return Ok(Parsed::Ignored {
            reason: format!("ref `{}` was deleted", p.reference),
        });
    }
    let commit = CommitId::parse(after)
        .map_err(|e| Rejection::bad_request(format!("after: {e}")))?
        .to_string();
    let new_ref = p.before.as_deref().map(str::trim) == Some(ZERO);
    let url = p.repository_url.trim().to_owned();
    // The same ref moved to the same commit, reported twice, is the same delivery.
    let delivery = format!("{url}@{}:{commit}", p.reference.trim());
    Ok(Parsed::Push(Push {
        source: Source::Git,
        repository: vec![],
        repository_urls: vec![url],
        repository_uuid: None,
        reference: Some(reference),
        default_branch: None,
        revision: commit,
        author: p.author.filter(|a| !a.trim().is_empty()),
        author_email: p.author_email.filter(|a| !a.trim().is_empty()),
        pusher: p.pusher.filter(|a| !a.trim().is_empty()),
        message: p.message,
        changed_paths: p.changed_paths,
        paths_complete: p.paths_complete && !new_ref,
        committed_at: p
            .date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d.trim()).ok())
            .map(|d| d.to_rfc3339()),
        delivery_id: Some(delivery),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("authorization", "Bearer token-1234".parse().unwrap());
        h
    }

    fn secret() -> Secret<String> {
        Secret::new("token-1234".to_owned())
    }

    #[test]
    fn a_branch_push_is_read() {
        let body = br#"{"repository_url": "git@git.example.com:ops/config.git",
            "ref": "refs/heads/main", "before": "1111111111111111111111111111111111111111",
            "after": "2222222222222222222222222222222222222222", "pusher": "ops",
            "author": "Ops", "changed_paths": ["shop/env/production.env"]}"#;
        let Ok(Parsed::Push(p)) = parse(&headers(), body, Some(&secret())) else {
            panic!("not a push");
        };
        assert_eq!(p.source, Source::Git);
        assert_eq!(p.reference, Some(Reference::Branch("main".into())));
        assert_eq!(p.revision, "2222222222222222222222222222222222222222");
        assert_eq!(p.pusher.as_deref(), Some("ops"));
        assert!(p.paths_complete);
    }

    #[test]
    fn deleted_refs_are_ignored_and_junk_is_refused() {
        let deleted = br#"{"repository_url": "u", "ref": "refs/heads/x",
            "after": "0000000000000000000000000000000000000000"}"#;
        assert!(matches!(
            parse(&headers(), deleted, Some(&secret())),
            Ok(Parsed::Ignored { .. })
        ));
        let bad = br#"{"repository_url": "u", "ref": "refs/heads/x", "after": "; rm -rf /"}"#;
        let r = parse(&headers(), bad, Some(&secret())).err().unwrap();
        assert_eq!(r.status.as_u16(), 400);
        let mut wrong = headers();
        wrong.insert("authorization", "Bearer nope".parse().unwrap());
        let r = parse(&wrong, deleted, Some(&secret())).err().unwrap();
        assert_eq!(r.status.as_u16(), 401);
    }
}

//! GitLab: `X-Gitlab-Event: Push Hook` / `Tag Push Hook`, the secret in
//! `X-Gitlab-Token`, and `Idempotency-Key` / `X-Gitlab-Event-UUID` for deduplication.

use super::forge::{Commit, changed_paths, paths_complete};
use crate::trigger::{
    Parsed, Push, Reference, Rejection, Source, git_revision, header, is_zero_sha, json,
    require_json,
};
use crate::verify::token_matches;
use ferry_shared::secret::Secret;
use http::HeaderMap;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Project {
    path_with_namespace: String,
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    user_username: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    user_email: Option<String>,
    project: Project,
    #[serde(default)]
    commits: Vec<Commit>,
    #[serde(default)]
    total_commits_count: Option<usize>,
}

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    if let Some(secret) = secret {
        check_token(headers, secret)?;
    }
    let event = header(headers, "x-gitlab-event")
        .ok_or_else(|| Rejection::bad_request("missing X-Gitlab-Event header"))?;
    require_json(headers)?;
    if event != "Push Hook" && event != "Tag Push Hook" {
        return Ok(Parsed::ignored(format!(
            "`{event}` events do not start runs; enable push and tag push events only"
        )));
    }
    let p: PushPayload = json(body)?;
    let sha = p
        .checkout_sha
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(&p.after);
    if is_zero_sha(&p.after) || is_zero_sha(sha) {
        return Ok(Parsed::ignored(format!(
            "`{}` was deleted: nothing to build",
            p.git_ref
        )));
    }
    let Some(reference) = Reference::from_git_ref(&p.git_ref)? else {
        return Ok(Parsed::ignored(format!(
            "`{}` is neither a branch nor a tag",
            p.git_ref
        )));
    };
    let revision = git_revision(sha)?;
    let head = p
        .commits
        .iter()
        .find(|c| c.id == revision)
        .or(p.commits.last());
    let delivery_id = header(headers, "idempotency-key")
        .or_else(|| header(headers, "x-gitlab-event-uuid"))
        .map(str::to_owned);
    let total = p.total_commits_count.unwrap_or(p.commits.len());
    let project = p.project;
    Ok(Parsed::Push(Push {
        source: Source::Gitlab,
        repository: vec![project.path_with_namespace],
        repository_urls: [project.git_http_url, project.git_ssh_url, project.web_url]
            .into_iter()
            .flatten()
            .collect(),
        repository_uuid: None,
        reference: Some(reference),
        default_branch: project.default_branch,
        revision,
        pusher: p.user_username.clone(),
        author: p.user_username.or(p.user_name),
        author_email: head
            .and_then(|c| c.author.as_ref())
            .and_then(|a| a.email.clone())
            .or(p.user_email),
        message: head.and_then(|c| c.message.clone()),
        committed_at: head.and_then(|c| c.timestamp.clone()),
        changed_paths: changed_paths(&p.commits),
        paths_complete: paths_complete(&p.commits, total),
        delivery_id,
    }))
}

/// GitLab proves itself with `X-Gitlab-Token` alone (checked before the body is read too).
pub fn check_token(headers: &HeaderMap, secret: &Secret<String>) -> Result<(), Rejection> {
    match header(headers, "x-gitlab-token") {
        None => Err(Rejection::unauthorized(
            "missing X-Gitlab-Token header: set the webhook's secret token in GitLab",
        )),
        Some(t) if !token_matches(secret, Some(t)) => {
            Err(Rejection::unauthorized("wrong X-Gitlab-Token"))
        }
        Some(_) => Ok(()),
    }
}

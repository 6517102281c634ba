//! The push payload shape GitHub and Gitea share (Gitea copied GitHub's), and what
//! GitLab has in common with both: commits with added/modified/removed paths.

use crate::trigger::{
    Parsed, Push, Reference, Rejection, Source, git_revision, header, is_zero_sha, require_json,
};
use crate::verify::hmac_sha256_matches;
use ferry_shared::secret::Secret;
use http::HeaderMap;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Forges list at most this many commits in a push payload; a push with this many
/// may have more, so its changed paths are not complete.
pub const COMMITS_LISTED_AT_MOST: usize = 20;

#[derive(Debug, Deserialize)]
pub struct Commit {
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub author: Option<Person>,
    /// Absent (not just empty) in some forges' payloads, e.g. older Gitea.
    #[serde(default)]
    pub added: Option<Vec<String>>,
    #[serde(default)]
    pub modified: Option<Vec<String>>,
    #[serde(default)]
    pub removed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Person {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub login: Option<String>,
}

/// Every path touched by the listed commits, sorted, each once.
pub fn changed_paths(commits: &[Commit]) -> Vec<String> {
    let set: BTreeSet<&String> = commits
        .iter()
        .flat_map(|c| [&c.added, &c.modified, &c.removed])
        .flatten()
        .flatten()
        .collect();
    set.into_iter().cloned().collect()
}

/// Whether `changed_paths` saw every change: all commits listed (`total` of them)
/// and each with its path lists.
pub fn paths_complete(commits: &[Commit], total: usize) -> bool {
    let listed_all = commits.len() >= total && commits.len() < COMMITS_LISTED_AT_MOST;
    listed_all
        && commits
            .iter()
            .all(|c| c.added.is_some() || c.modified.is_some() || c.removed.is_some())
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    #[serde(default)]
    commits: Vec<Commit>,
    #[serde(default)]
    head_commit: Option<Commit>,
    #[serde(default)]
    pusher: Option<Person>,
    /// The authenticated account that sent the push (GitHub, Gitea).
    #[serde(default)]
    sender: Option<Person>,
}

pub enum PushOutcome {
    Push(Box<Push>),
    Deleted(String),
    UnknownRef(String),
}

/// A GitHub- or Gitea-style push payload.
pub fn parse_push(
    source: Source,
    body: &[u8],
    delivery_id: Option<String>,
) -> Result<PushOutcome, Rejection> {
    let p: PushPayload = crate::trigger::json(body)?;
    if p.deleted || is_zero_sha(&p.after) {
        return Ok(PushOutcome::Deleted(p.git_ref));
    }
    let Some(reference) = Reference::from_git_ref(&p.git_ref)? else {
        return Ok(PushOutcome::UnknownRef(p.git_ref));
    };
    let revision = git_revision(&p.after)?;
    let head = p
        .head_commit
        .as_ref()
        .or_else(|| p.commits.iter().find(|c| c.id == p.after));
    let author = head.and_then(|c| c.author.as_ref());
    let pusher = p.pusher.as_ref();
    // Who the forge authenticated: `sender.login`, else the pusher's login (GitHub's
    // `pusher.name` is the login; the commit's author is whatever the committer wrote).
    let authenticated = p
        .sender
        .as_ref()
        .and_then(|s| s.login.clone().or_else(|| s.username.clone()))
        .or_else(|| {
            pusher.and_then(|p| {
                p.login
                    .clone()
                    .or_else(|| p.username.clone())
                    .or_else(|| p.name.clone())
            })
        })
        .filter(|s| !s.trim().is_empty());
    let r = p.repository;
    let urls = [r.clone_url, r.ssh_url, r.html_url]
        .into_iter()
        .flatten()
        .collect();
    Ok(PushOutcome::Push(Box::new(Push {
        source,
        repository: vec![r.full_name],
        repository_urls: urls,
        repository_uuid: None,
        reference: Some(reference),
        default_branch: r.default_branch,
        revision,
        author: author
            .and_then(|a| a.username.clone().or_else(|| a.name.clone()))
            .or_else(|| {
                pusher.and_then(|p| {
                    p.login
                        .clone()
                        .or_else(|| p.username.clone())
                        .or_else(|| p.name.clone())
                })
            }),
        pusher: authenticated,
        author_email: author
            .and_then(|a| a.email.clone())
            .or_else(|| pusher.and_then(|p| p.email.clone())),
        message: head.and_then(|c| c.message.clone()),
        committed_at: head.and_then(|c| c.timestamp.clone()),
        changed_paths: changed_paths(&p.commits),
        paths_complete: paths_complete(&p.commits, p.commits.len()),
        delivery_id,
    })))
}

/// The outcome of a push-shaped payload as a [`crate::trigger::Parsed`].
pub fn into_parsed(outcome: PushOutcome) -> crate::trigger::Parsed {
    match outcome {
        PushOutcome::Push(p) => crate::trigger::Parsed::Push(*p),
        PushOutcome::Deleted(r) => {
            crate::trigger::Parsed::ignored(format!("`{r}` was deleted: nothing to build"))
        }
        PushOutcome::UnknownRef(r) => {
            crate::trigger::Parsed::ignored(format!("`{r}` is neither a branch nor a tag"))
        }
    }
}

/// How a forge that signs its bodies (GitHub, Gitea) sends a push.
pub struct SignedForge {
    pub source: Source,
    pub name: &'static str,
    /// Header names as the forge writes them (lookups ignore case).
    pub signature_header: &'static str,
    /// `sha256=` for GitHub, nothing for Gitea.
    pub signature_prefix: &'static str,
    pub event_header: &'static str,
    pub delivery_header: &'static str,
}

/// Verify the body's HMAC first, then read the event type and the push.
pub fn parse_signed(
    forge: &SignedForge,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    let sig_name = forge.signature_header;
    if let Some(secret) = secret {
        let sig = header(headers, sig_name).ok_or_else(|| {
            Rejection::unauthorized(format!(
                "missing {sig_name} header: set the webhook's secret in {}",
                forge.name
            ))
        })?;
        let hex = sig.strip_prefix(forge.signature_prefix).ok_or_else(|| {
            Rejection::unauthorized(format!(
                "{sig_name} must be `{}<hex>`",
                forge.signature_prefix
            ))
        })?;
        if !hmac_sha256_matches(secret, body, hex) {
            return Err(Rejection::unauthorized(format!(
                "{sig_name} does not match the body: check the webhook secret"
            )));
        }
    }
    let event = header(headers, forge.event_header)
        .ok_or_else(|| Rejection::bad_request(format!("missing {} header", forge.event_header)))?;
    require_json(headers)?;
    match event {
        "push" => {
            let delivery = header(headers, forge.delivery_header).map(str::to_owned);
            Ok(into_parsed(parse_push(forge.source, body, delivery)?))
        }
        "ping" => Ok(Parsed::ignored("ping received: the webhook works")),
        other => Ok(Parsed::ignored(format!(
            "`{other}` events do not start runs; send push events only"
        ))),
    }
}

//! The push payload shape GitHub and Gitea share (Gitea copied GitHub's), and what
//! GitLab has in common with both: commits with added/modified/removed paths.

use crate::trigger::{Push, Reference, Rejection, Source, git_revision, is_zero_sha};
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
    let Some(reference) = Reference::from_git_ref(&p.git_ref) else {
        return Ok(PushOutcome::UnknownRef(p.git_ref));
    };
    let revision = git_revision(&p.after)?;
    let head = p
        .head_commit
        .as_ref()
        .or_else(|| p.commits.iter().find(|c| c.id == p.after));
    let author = head.and_then(|c| c.author.as_ref());
    let pusher = p.pusher.as_ref();
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
        author_email: author
            .and_then(|a| a.email.clone())
            .or_else(|| pusher.and_then(|p| p.email.clone())),
        message: head.and_then(|c| c.message.clone()),
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

//! What a webhook is turned into, once, at the edge: a typed trigger or a rejection.

use ferry_shared::revision::{CommitId, RefName};
use http::{HeaderMap, StatusCode};
use serde::Serialize;

/// Where a request came from (the path segment of `/hooks/<source>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Gitlab,
    Github,
    Gitea,
    /// A plain git server's post-receive hook (`deploy/hooks/git-post-receive`).
    Git,
    Svn,
    Harbor,
    Manual,
}

impl Source {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "gitlab" => Self::Gitlab,
            "github" => Self::Github,
            "gitea" => Self::Gitea,
            "git" => Self::Git,
            "svn" => Self::Svn,
            "harbor" => Self::Harbor,
            "manual" => Self::Manual,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gitlab => "gitlab",
            Self::Github => "github",
            Self::Gitea => "gitea",
            Self::Git => "git",
            Self::Svn => "svn",
            Self::Harbor => "harbor",
            Self::Manual => "manual",
        }
    }
}

/// A branch or a tag, as pushed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "name")]
pub enum Reference {
    Branch(String),
    Tag(String),
}

impl Reference {
    /// From a git ref such as `refs/heads/main` or `refs/tags/v1.2`: `None` for other
    /// refs, a rejection for a name git itself would refuse (no forge sends one).
    pub fn from_git_ref(r: &str) -> Result<Option<Self>, Rejection> {
        let name = |n: &str| {
            RefName::parse(n)
                .map(|n| n.as_str().to_owned())
                .map_err(|e| Rejection::bad_request(format!("pushed ref: {e}")))
        };
        if let Some(b) = r.strip_prefix("refs/heads/") {
            Ok(Some(Self::Branch(name(b)?)))
        } else if let Some(t) = r.strip_prefix("refs/tags/") {
            Ok(Some(Self::Tag(name(t)?)))
        } else {
            Ok(None)
        }
    }
}

/// A commit pushed to a code repository: what starts a build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Push {
    pub source: Source,
    /// Names the forge gives the repository (`path_with_namespace`, `full_name`).
    pub repository: Vec<String>,
    /// URLs the forge gives the repository (clone, web, SVN root).
    pub repository_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    pub revision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    /// The account the forge authenticated for this push (not the commit's author,
    /// which the committer writes): who started the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub changed_paths: Vec<String>,
    /// False when the sender listed only some commits: path filters then let it through.
    pub paths_complete: bool,
    /// When the revision was committed (RFC 3339), if the sender says: where lead time
    /// starts. The committer writes it, so it orders nothing (see `ferry_shared::order`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    /// The sender's id of this delivery, if it sends one; repeats are answered from memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// An image pushed to the registry elsewhere (Harbor): a run that starts at deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImagePush {
    /// When Harbor saw the push (Unix seconds), if it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<i64>,
    /// `host[:port]` of the registry the image is on (from `resource_url`).
    pub registry: String,
    /// `namespace/name` inside the registry, e.g. `library/shop`.
    pub repository: String,
    /// `host/namespace/name`, without tag or digest.
    pub image: String,
    pub tag: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// A run requested by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Manual {
    pub project: String,
    pub revision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "trigger")]
pub enum Parsed {
    Push(Push),
    Image(ImagePush),
    Manual(Manual),
    /// Understood and deliberately not acted upon (ping, other event types, a
    /// deleted branch): answered 2xx so forges keep the hook enabled.
    Ignored {
        reason: String,
    },
}

impl Parsed {
    pub fn ignored(reason: impl Into<String>) -> Self {
        Self::Ignored {
            reason: reason.into(),
        }
    }
}

/// Why a request is refused: the status and a reason for the sender's hook log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub status: StatusCode,
    pub reason: String,
}

impl Rejection {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason)
    }
}

/// A header as text, if present once and readable. A header sent twice counts as
/// absent: with two tokens or signatures, which one was meant is anybody's guess.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

/// Webhook bodies must be JSON; forms (GitHub's other content type) are refused
/// with what to change.
pub fn require_json(headers: &HeaderMap) -> Result<(), Rejection> {
    let ct = header(headers, "content-type").unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type `{ct}` is not supported: configure the webhook to send application/json"
            ),
        ))
    }
}

/// Parse a JSON body into `T`, with serde's message (which names the field) as the reason.
pub fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body)
        .map_err(|e| Rejection::bad_request(format!("invalid JSON payload: {e}")))
}

/// A git commit id: 40 (SHA-1) or 64 (SHA-256) hex digits, not all zero; lowercased.
pub fn git_revision(sha: &str) -> Result<String, Rejection> {
    CommitId::parse(sha)
        .map(|c| c.to_string())
        .map_err(|e| Rejection::bad_request(e.to_string()))
}

pub fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

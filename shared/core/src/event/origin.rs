//! Who started a run, and who let a rebuilt rollback skip the test gate: carried on
//! the envelope of every event of the run, so the approval gate and the updater can
//! read them from the event at hand, and the history shows them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who started a run: `{"operator": "alice"}`, `{"push": {"pusher": "bob", "authors":
/// ["jane", "jane@example.com"]}}`, `{"author": "jane"}` or `"manual_hook"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Starter {
    /// An operator of the API (`ferry deploy`, `ferry rollback`), by their
    /// `[operators]` name.
    Operator(String),
    /// A push to a forge: the account the forge authenticated (GitHub/Gitea
    /// `sender`/`pusher`, GitLab `user_username`), which a committer cannot forge,
    /// and the head commit's author as written in the commit (name, e-mail), which
    /// anyone can write. Both count as having started the run.
    Push {
        pusher: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        authors: Vec<String>,
    },
    /// The author a hook reported where there is no authenticated pusher (an SVN
    /// post-commit hook reports `svnlook author`).
    Author(String),
    /// `/hooks/manual`: its token is shared, and whatever author its body names is
    /// free text, so nobody in particular started the run.
    ManualHook,
}

impl fmt::Display for Starter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Starter::Operator(name) => write!(f, "operator {name}"),
            Starter::Push { pusher, authors } if authors.is_empty() => {
                write!(f, "pusher {pusher}")
            }
            Starter::Push { pusher, authors } => {
                write!(f, "pusher {pusher} (commit author {})", authors.join(", "))
            }
            Starter::Author(author) => write!(f, "commit author {author}"),
            Starter::ManualHook => write!(f, "the manual hook"),
        }
    }
}

/// An operator's recorded decision that a rebuilt rollback goes straight to its
/// environment, without passing the environments before it and their tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOverride {
    /// The operator (allowed to approve that environment).
    pub by: String,
    /// Why, in their words.
    pub reason: String,
}

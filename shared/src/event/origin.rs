//! Who started a run, and who let a rebuilt rollback skip the test gate: carried on
//! the envelope of every event of the run, so the approval gate and the updater can
//! read them from the event at hand, and the history shows them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who started a run: `{"operator": "alice"}` or `{"author": "jane@example.com"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Starter {
    /// An operator of the API (`ferry deploy`, `ferry rollback`), by their
    /// `[operators]` name.
    Operator(String),
    /// The commit (or push) author a webhook reported.
    Author(String),
}

impl fmt::Display for Starter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Starter::Operator(name) => write!(f, "operator {name}"),
            Starter::Author(author) => write!(f, "commit author {author}"),
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

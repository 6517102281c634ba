//! `[operators.<name>]`: who may use the operator API, and for what.
//!
//! Each operator has a token and a scope: the projects and environments they may act
//! on, and what they may do there (`can`). Scopes default to every project and
//! environment, and `can` to `["view"]`: an entry with only a token (the form before
//! scopes existed) still loads, but can only read runs until it is granted more.
//!
//! Tokens are kept as SHA-256 digests once loaded and a presented token is compared
//! with every digest in constant time, so neither a token's bytes nor its length show
//! in how long a refusal takes.

use super::Problem;
use crate::event::Starter;
use crate::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What an operator may do. Any of `deploy`, `approve` or `rollback` includes `view`
/// (one sees what one may act on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `ferry runs`, `ferry watch`, `--wait`: read the run history.
    View,
    /// `ferry deploy`: start a run of a revision.
    Deploy,
    /// `ferry approve` / `ferry reject`, and a rollback's `--skip-gate`.
    Approve,
    /// `ferry rollback`.
    Rollback,
    /// `ferry scale`: change how many instances an environment runs.
    Scale,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Deploy => "deploy",
            Action::Approve => "approve",
            Action::Rollback => "rollback",
            Action::Scale => "scale",
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        [
            Action::View,
            Action::Deploy,
            Action::Approve,
            Action::Rollback,
            Action::Scale,
        ]
        .into_iter()
        .find(|a| a.as_str() == word)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{word}` is not an action; use view, deploy, approve, rollback or scale"
            ))
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names from the configuration, or every one (`"*"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    Only(BTreeSet<String>),
}

impl Scope {
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(names) => names.contains(name),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("[\"*\"]"),
            Scope::Only(names) => write!(f, "{names:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Ok(if names.iter().any(|n| n == "*") {
            Scope::All
        } else {
            Scope::Only(names.into_iter().collect())
        })
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Scope::All => ["*"].serialize(s),
            Scope::Only(names) => names.serialize(s),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    pub token: Secret<String>,
    /// Projects this operator may act on: names from `[projects]`, or `"*"`.
    #[serde(default)]
    pub projects: Scope,
    /// Environments this operator may act on: names from `[environments]`, or `"*"`.
    #[serde(default)]
    pub environments: Scope,
    /// What they may do there. Unset: `["view"]` only (with a start-up warning).
    #[serde(default)]
    pub can: Option<BTreeSet<Action>>,
    /// The names under which this person commits (git e-mail or user name, SVN user),
    /// compared case-insensitively: with `require_other_approver`, a run whose commit
    /// author is one of these is theirs, and they cannot approve it.
    #[serde(default)]
    pub authors: Vec<String>,
}

impl OperatorConfig {
    /// What the operator may do, `view` included when anything else is.
    pub fn actions(&self) -> BTreeSet<Action> {
        let mut can = self.can.clone().unwrap_or_else(|| [Action::View].into());
        if !can.is_empty() {
            can.insert(Action::View);
        }
        can
    }
}

/// One operator as the API sees them, after loading.
#[derive(Clone, Debug)]
pub struct Access {
    pub name: String,
    pub projects: Scope,
    pub environments: Scope,
    pub can: BTreeSet<Action>,
    authors: Vec<String>,
}

/// Why an operator may not do something: each names the key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "operator `{operator}` may not {action} (operators.{operator}.can is {can}); an administrator can add `{action}` to it"
    )]
    Action {
        operator: String,
        action: Action,
        can: String,
    },
    #[error(
        "operator `{operator}` may not {action} project `{project}` (operators.{operator}.projects is {scope})"
    )]
    Project {
        operator: String,
        action: Action,
        project: String,
        scope: String,
    },
    #[error(
        "operator `{operator}` may not {action} in environment `{environment}` (operators.{operator}.environments is {scope})"
    )]
    Environment {
        operator: String,
        action: Action,
        environment: String,
        scope: String,
    },
    #[error(
        "operator `{operator}` started this run ({starter}) and environments.{environment}.require_other_approver asks for someone else to approve it into {environment}"
    )]
    OwnRun {
        operator: String,
        environment: String,
        starter: String,
    },
}

impl Access {
    /// Whether the operator may do `action` at all (anywhere in their scope).
    pub fn can(&self, action: Action) -> Result<(), Denied> {
        if self.can.contains(&action) {
            return Ok(());
        }
        Err(Denied::Action {
            operator: self.name.clone(),
            action,
            can: format!(
                "{:?}",
                self.can.iter().map(|a| a.as_str()).collect::<Vec<_>>()
            ),
        })
    }

    /// Whether the operator may do `action` on `project`, in `environment` when the
    /// action concerns one.
    pub fn allow(
        &self,
        action: Action,
        project: &str,
        environment: Option<&str>,
    ) -> Result<(), Denied> {
        self.can(action)?;
        if !self.projects.allows(project) {
            return Err(Denied::Project {
                operator: self.name.clone(),
                action,
                project: project.to_owned(),
                scope: self.projects.to_string(),
            });
        }
        if let Some(env) = environment
            && !self.environments.allows(env)
        {
            return Err(Denied::Environment {
                operator: self.name.clone(),
                action,
                environment: env.to_owned(),
                scope: self.environments.to_string(),
            });
        }
        Ok(())
    }

    /// Whether this operator is who started a run: the operator by name; a pusher or
    /// commit author that is their name or one of their `authors`. Never a run of the
    /// manual hook (its body's author is free text).
    pub fn started(&self, starter: &Starter) -> bool {
        let is_me = |who: &str| {
            let who = who.trim();
            who.eq_ignore_ascii_case(&self.name)
                || self.authors.iter().any(|a| a.eq_ignore_ascii_case(who))
        };
        match starter {
            Starter::Operator(name) => *name == self.name,
            Starter::Push { pusher, authors } => is_me(pusher) || authors.iter().any(|a| is_me(a)),
            Starter::Author(author) => is_me(author),
            Starter::ManualHook => false,
        }
    }

    /// The refusal when `environment` requires another approver and this operator
    /// started the run.
    pub fn own_run(&self, environment: &str, starter: Option<&Starter>) -> Result<(), Denied> {
        match starter {
            Some(s) if self.started(s) => Err(Denied::OwnRun {
                operator: self.name.clone(),
                environment: environment.to_owned(),
                starter: s.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// The operators by token digest, built once at start-up.
#[derive(Clone, Debug, Default)]
pub struct OperatorKeys {
    keys: Vec<([u8; 32], Arc<Access>)>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl OperatorKeys {
    pub fn new(operators: &BTreeMap<String, OperatorConfig>) -> Self {
        let keys = operators
            .iter()
            .map(|(name, op)| {
                if op.can.is_none() {
                    tracing::warn!(
                        operator = %name,
                        "operators.{name} has no `can`: this operator may only view runs; add e.g. can = [\"view\", \"deploy\", \"approve\", \"rollback\", \"scale\"]"
                    );
                }
                let access = Access {
                    name: name.clone(),
                    projects: op.projects.clone(),
                    environments: op.environments.clone(),
                    can: op.actions(),
                    authors: op.authors.iter().map(|a| a.trim().to_owned()).collect(),
                };
                (digest(op.token.expose()), Arc::new(access))
            })
            .collect();
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The operator whose token this is. Every digest is compared (no early exit), in
    /// constant time, and digests all have the same length.
    pub fn find(&self, token: &str) -> Option<Arc<Access>> {
        let presented = digest(token);
        let mut found = None;
        for (key, access) in &self.keys {
            if bool::from(key.ct_eq(&presented)) && found.is_none() {
                found = Some(access.clone());
            }
        }
        found
    }

    /// An operator by name, with a fingerprint of their current token: what a signed
    /// session names, so that a changed or removed token ends the operator's sessions.
    /// The fingerprint is a hash of the token's digest, not the digest itself.
    pub fn by_name(&self, name: &str) -> Option<(String, Arc<Access>)> {
        let (key, access) = self.keys.iter().find(|(_, a)| a.name == name)?;
        let mut h = Sha256::new();
        h.update(b"ferry-session\0");
        h.update(key);
        let fp: [u8; 32] = h.finalize().into();
        let hex: String = fp[..8].iter().map(|b| format!("{b:02x}")).collect();
        Some((hex, access.clone()))
    }
}

/// What is wrong in `[operators]`, each naming its key.
pub fn problems(
    operators: &BTreeMap<String, OperatorConfig>,
    projects: &[&str],
    environments: &[&str],
    out: &mut Vec<Problem>,
) {
    let mut bad = |key: String, message: String| out.push(Problem { key, message });
    let mut seen: BTreeMap<[u8; 32], &str> = BTreeMap::new();
    for (name, op) in operators {
        if op.token.expose().len() < 16 {
            bad(
                format!("operators.{name}.token"),
                "must be at least 16 characters (e.g. `openssl rand -hex 24`)".into(),
            );
        }
        if let Some(first) = seen.insert(digest(op.token.expose()), name) {
            bad(
                format!("operators.{name}.token"),
                format!(
                    "is the same token as operators.{first}.token: each operator needs their own, or events cannot say who acted"
                ),
            );
        }
        for (key, scope, known, what) in [
            ("projects", &op.projects, projects, "[projects]"),
            (
                "environments",
                &op.environments,
                environments,
                "[environments]",
            ),
        ] {
            match scope {
                Scope::All => {}
                Scope::Only(names) if names.is_empty() => bad(
                    format!("operators.{name}.{key}"),
                    "is empty: name some or use [\"*\"] (remove the operator to take their access away)".into(),
                ),
                Scope::Only(names) => {
                    for n in names.iter().filter(|n| !known.contains(&n.as_str())) {
                        bad(
                            format!("operators.{name}.{key}"),
                            format!("`{n}` is not defined in {what}"),
                        );
                    }
                }
            }
        }
        if op.authors.iter().any(|a| a.trim().is_empty()) {
            bad(
                format!("operators.{name}.authors"),
                "must not contain empty names".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(json: &str) -> OperatorConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_token_only_entry_may_view_only() {
        let o = op(r#"{"token": "0123456789abcdef"}"#);
        assert_eq!(o.actions(), [Action::View].into());
        assert_eq!(o.projects, Scope::All);
    }

    #[test]
    fn any_action_includes_view_and_star_means_all() {
        let o = op(r#"{"token": "0123456789abcdef", "can": ["approve"], "projects": ["a", "*"]}"#);
        assert_eq!(o.actions(), [Action::View, Action::Approve].into());
        assert_eq!(o.projects, Scope::All);
        let none = op(r#"{"token": "0123456789abcdef", "can": []}"#);
        assert!(none.actions().is_empty());
    }

    #[test]
    fn tokens_are_found_by_digest_and_scopes_are_enforced() {
        let mut ops = BTreeMap::new();
        ops.insert(
            "bob".to_owned(),
            op(r#"{"token": "bob-token-0123456789", "can": ["approve"], "projects": ["a"], "environments": ["staging"], "authors": ["Bob@Example.com"]}"#),
        );
        let keys = OperatorKeys::new(&ops);
        assert!(keys.find("bob-token-012345678").is_none());
        assert!(keys.find("bob-token-0123456789x").is_none());
        let bob = keys.find("bob-token-0123456789").unwrap();
        assert!(bob.allow(Action::Approve, "a", Some("staging")).is_ok());
        assert!(matches!(
            bob.allow(Action::Approve, "b", Some("staging")),
            Err(Denied::Project { .. })
        ));
        assert!(matches!(
            bob.allow(Action::Approve, "a", Some("production")),
            Err(Denied::Environment { .. })
        ));
        assert!(matches!(
            bob.allow(Action::Deploy, "a", None),
            Err(Denied::Action { .. })
        ));
        assert!(bob.started(&Starter::Author("bob@example.com".into())));
        assert!(bob.started(&Starter::Operator("bob".into())));
        assert!(!bob.started(&Starter::Operator("alice".into())));
        let push = |pusher: &str, author: &str| Starter::Push {
            pusher: pusher.into(),
            authors: vec![author.into()],
        };
        assert!(bob.started(&push("bob", "alice@example.com")));
        assert!(bob.started(&push("carol", "Bob@example.com")));
        assert!(!bob.started(&push("carol", "alice@example.com")));
        assert!(!bob.started(&Starter::ManualHook));
    }

    #[test]
    fn duplicate_tokens_and_unknown_names_are_problems_naming_the_keys() {
        let mut ops = BTreeMap::new();
        ops.insert("a".to_owned(), op(r#"{"token": "same-token-0123456789"}"#));
        ops.insert(
            "b".to_owned(),
            op(r#"{"token": "same-token-0123456789", "projects": ["nope"]}"#),
        );
        let mut out = vec![];
        problems(&ops, &["shop"], &["staging"], &mut out);
        let text: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("operators.b.token:") && t.contains("operators.a.token")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("operators.b.projects:") && t.contains("nope")),
            "{text:?}"
        );
    }
}

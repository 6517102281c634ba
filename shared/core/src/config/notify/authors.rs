//! `[notify.authors]`: how to reach a commit's author (mentions in chat, mail).

use super::{NotifyConfig, looks_like_email};
use crate::config::problem::{Problem, Report};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorConfig {
    /// Display name in messages.
    #[serde(default)]
    pub name: Option<String>,
    /// DingTalk `atMobiles`, WeCom `mentioned_mobile_list`.
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// WeCom user id (`<@id>` in markdown, `mentioned_list` in text).
    #[serde(default)]
    pub wecom: Option<String>,
    /// Feishu open_id / user_id (`<at user_id="...">`).
    #[serde(default)]
    pub feishu: Option<String>,
    /// Slack member id (`<@U...>`).
    #[serde(default)]
    pub slack: Option<String>,
}

impl NotifyConfig {
    /// The author entry for a commit author, compared case-insensitively; a git
    /// `Name <email>` is also looked up by its e-mail.
    pub fn author(&self, who: &str) -> Option<&AuthorConfig> {
        let email = who
            .rsplit_once('<')
            .and_then(|(_, rest)| rest.strip_suffix('>'));
        [Some(who.trim()), email]
            .into_iter()
            .flatten()
            .find_map(|key| {
                self.authors
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, a)| a)
            })
    }
}

/// Phone numbers and addresses look like ones.
pub(super) fn check(authors: &BTreeMap<String, AuthorConfig>, out: &mut Vec<Problem>) {
    for (who, a) in authors {
        if let Some(m) = &a.mobile
            && !(m.len() >= 5
                && m.chars()
                    .all(|c| c.is_ascii_digit() || c == '+' || c == '-'))
        {
            out.bad(
                format!("notify.authors.\"{who}\".mobile"),
                format!("`{m}` is not a phone number"),
            );
        }
        if let Some(e) = &a.email
            && !looks_like_email(e)
        {
            out.bad(
                format!("notify.authors.\"{who}\".email"),
                format!("`{e}` is not an e-mail address"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_found_case_insensitively_and_by_git_email() {
        let mut cfg = NotifyConfig::default();
        cfg.authors.insert(
            "Alice@Example.com".into(),
            AuthorConfig {
                mobile: Some("13800000000".into()),
                ..Default::default()
            },
        );
        assert!(cfg.author("alice@example.com").is_some());
        assert!(cfg.author("Alice Liddell <alice@example.com>").is_some());
        assert!(cfg.author("bob").is_none());
    }
}

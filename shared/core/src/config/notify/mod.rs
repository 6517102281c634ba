//! `[notify]`: where the notifier sends what (channels, routes, the author map), and the
//! address rules every notification URL is checked against.
//!
//! Channels are written as one flat table per channel with a `kind`; they are parsed
//! into one variant per platform holding its own keys ([`ChannelKind`]), and a key given
//! to the wrong kind is an error that names it, like every other configuration mistake.

mod address;
mod authors;
mod channel;
mod channel_file;
mod routes;

pub use address::{allowed, check_host, check_url, refused_range};
pub use authors::AuthorConfig;
pub use channel::{
    ChannelConfig, ChannelKind, ChatMsgType, DingTalkChannel, EmailChannel, FeishuChannel,
    FeishuMsgType, RateLimit, SlackChannel, SmtpTls, WeComChannel, WebhookChannel,
};
pub use routes::{RouteConfig, kind_matches};

use super::problem::{Problem, Report};
use channel_file::ChannelFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Languages messages are written in.
pub const LANGUAGES: [&str; 2] = ["en", "zh-CN"];

#[derive(Clone, Debug, Serialize)]
pub struct NotifyConfig {
    /// Default language of messages: `en` or `zh-CN` (a channel may override it).
    pub language: String,
    /// Hosts, IP addresses or CIDR ranges that notifications may reach although they are
    /// loopback, private or link-local (e.g. an in-house SMTP relay, `10.1.2.0/24`).
    pub allow_hosts: Vec<String>,
    /// Deadline of one HTTP request or SMTP session.
    pub timeout_ms: u64,
    /// Tries of one delivery within a handler run (5xx, 429, timeouts) before the
    /// event goes back to the bus's retry queues.
    pub attempts: u32,
    /// Wait before the second try; doubles each time (a 429's `Retry-After` wins).
    pub backoff_ms: u64,
    /// Longest a handler waits for its messages to leave a rate-limited queue; then the
    /// event is retried later (the queued message still goes out once). Keep it below
    /// `services.notifier.handler_timeout_secs` (120).
    pub max_wait_secs: u64,
    /// Event ids remembered per channel as delivered, so a redelivered event is not
    /// sent twice.
    pub remember: usize,
    /// Where delivered event ids are journaled (one file per channel) so that a restart
    /// still recognises them; without it the memory is the process's only.
    pub state_dir: Option<PathBuf>,
    /// The operators' command as messages show it (`ferry logs <run>`).
    pub cli: String,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub routes: Vec<RouteConfig>,
    /// Commit author (SVN user name or git e-mail, case-insensitive) → how to reach them.
    pub authors: BTreeMap<String, AuthorConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            language: "en".into(),
            allow_hosts: Vec::new(),
            timeout_ms: 10_000,
            attempts: 3,
            backoff_ms: 1_000,
            max_wait_secs: 90,
            remember: 10_000,
            state_dir: None,
            cli: "ferry".into(),
            channels: BTreeMap::new(),
            routes: Vec::new(),
            authors: BTreeMap::new(),
        }
    }
}

/// What routes may name: event kinds, and the projects and environments configured.
pub(crate) struct Known<'a> {
    pub kinds: &'a [&'a str],
    pub projects: Vec<&'a str>,
    pub environments: Vec<&'a str>,
}

/// `[notify]` as written: channels are flat tables (see `channel_file`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NotifyFile {
    language: String,
    allow_hosts: Vec<String>,
    timeout_ms: u64,
    attempts: u32,
    backoff_ms: u64,
    max_wait_secs: u64,
    remember: usize,
    state_dir: Option<PathBuf>,
    cli: String,
    channels: BTreeMap<String, ChannelFile>,
    routes: Vec<RouteConfig>,
    authors: BTreeMap<String, AuthorConfig>,
}

impl Default for NotifyFile {
    fn default() -> Self {
        let typed = NotifyConfig::default();
        Self {
            language: typed.language,
            allow_hosts: typed.allow_hosts,
            timeout_ms: typed.timeout_ms,
            attempts: typed.attempts,
            backoff_ms: typed.backoff_ms,
            max_wait_secs: typed.max_wait_secs,
            remember: typed.remember,
            state_dir: typed.state_dir,
            cli: typed.cli,
            channels: BTreeMap::new(),
            routes: typed.routes,
            authors: typed.authors,
        }
    }
}

impl NotifyFile {
    /// The section, parsed and checked in one go: routes are checked against every
    /// channel named in the file, so a wrong channel is reported once, where it is.
    pub(crate) fn parse(self, known: &Known<'_>, out: &mut Vec<Problem>) -> NotifyConfig {
        self.check_settings(out);
        let names: Vec<&str> = self.channels.keys().map(String::as_str).collect();
        for (i, r) in self.routes.iter().enumerate() {
            r.check(i, &names, known, out);
        }
        authors::check(&self.authors, out);
        let allow = &self.allow_hosts;
        let channels = self
            .channels
            .into_iter()
            .filter_map(|(name, c)| {
                let parsed = c.parse(&format!("notify.channels.{name}"), allow, out)?;
                Some((name, parsed))
            })
            .collect();
        NotifyConfig {
            language: self.language,
            allow_hosts: self.allow_hosts,
            timeout_ms: self.timeout_ms,
            attempts: self.attempts,
            backoff_ms: self.backoff_ms,
            max_wait_secs: self.max_wait_secs,
            remember: self.remember,
            state_dir: self.state_dir,
            cli: self.cli,
            channels,
            routes: self.routes,
            authors: self.authors,
        }
    }

    /// The settings of `[notify]` itself.
    fn check_settings(&self, out: &mut Vec<Problem>) {
        if !LANGUAGES.contains(&self.language.as_str()) {
            out.bad(
                "notify.language",
                format!("`{}` is not supported; use `en` or `zh-CN`", self.language),
            );
        }
        for entry in &self.allow_hosts {
            if entry.trim().is_empty()
                || (entry.contains('/') && address::parse_cidr(entry).is_none())
            {
                out.bad(
                    "notify.allow_hosts",
                    format!("`{entry}` is not a host name, an IP address or a CIDR range"),
                );
            }
        }
        for (key, value) in [
            ("notify.timeout_ms", self.timeout_ms),
            ("notify.attempts", u64::from(self.attempts)),
            ("notify.max_wait_secs", self.max_wait_secs),
            ("notify.remember", self.remember as u64),
        ] {
            if value == 0 {
                out.bad(key, "must be greater than 0");
            }
        }
    }
}

/// `user@domain.tld`, alone or as `Name <user@domain.tld>`.
fn looks_like_email(s: &str) -> bool {
    let addr = s
        .rsplit_once('<')
        .and_then(|(_, rest)| rest.strip_suffix('>'))
        .unwrap_or(s)
        .trim();
    matches!(addr.split_once('@'), Some((user, domain))
        if !user.is_empty() && domain.contains('.') && !domain.starts_with('.')
            && !addr.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests;

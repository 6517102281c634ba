//! `[notify]`: where the notifier sends what (channels, routes, the author map), and the
//! address rules every notification URL is checked against.
//!
//! Channels are one flat table per channel with a `kind`; which keys a kind takes is
//! checked in [`NotifyConfig::problems`], so a key given to the wrong kind is an error
//! that names it, like every other configuration mistake.

use crate::config::Problem;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Languages messages are written in.
pub const LANGUAGES: [&str; 2] = ["en", "zh-CN"];
/// Channel kinds.
pub const KINDS: [&str; 6] = ["dingtalk", "wecom", "feishu", "slack", "webhook", "email"];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
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

/// One destination. Which keys apply depends on `kind` (see the README's table).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// `dingtalk`, `wecom`, `feishu`, `slack`, `webhook` or `email`.
    pub kind: String,
    /// Webhook URL (chat kinds, `webhook`): a secret, it carries the robot's token.
    #[serde(default)]
    pub url: Option<Secret<String>>,
    /// Signing secret: DingTalk `SEC...`, Feishu, or the generic webhook's HMAC key.
    #[serde(default)]
    pub secret: Option<Secret<String>>,
    /// Message type: DingTalk/WeCom `markdown` (default) or `text`; Feishu
    /// `interactive` (default) or `text`.
    #[serde(default)]
    pub msgtype: Option<String>,
    /// Overrides `notify.language`.
    #[serde(default)]
    pub language: Option<String>,
    /// Overrides the kind's rate limit (DingTalk and WeCom 20 a minute, Feishu 100 a
    /// minute, Slack 1 a second, others none).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Email: SMTP server.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// Email: default 587 (`starttls`), 465 (`tls`), 25 (`none`).
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Email: `starttls` (default), `tls` (implicit TLS) or `none` (plain: only for a
    /// relay on an allow-listed host).
    #[serde(default)]
    pub tls: Option<String>,
    /// Email: PEM file of the CA(s) that signed the SMTP server's certificate, trusted
    /// besides the public roots (a company relay with its own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// Email: sender, e.g. `Ferry <ferry@example.com>`.
    #[serde(default)]
    pub from: Option<String>,
    /// Email: the team's addresses (the committer is added when a route mentions them).
    #[serde(default)]
    pub to: Vec<String>,
}

/// At most `messages` sends per `window_ms`, per channel. Messages beyond it wait and
/// are merged, never dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub messages: u32,
    pub window_ms: u64,
}

impl RateLimit {
    /// The platform's published limit for a kind; `None` when there is none.
    pub fn default_for(kind: &str) -> Option<RateLimit> {
        let per = |messages, window_ms| {
            Some(RateLimit {
                messages,
                window_ms,
            })
        };
        match kind {
            "dingtalk" | "wecom" => per(20, 60_000),
            "feishu" => per(100, 60_000),
            "slack" => per(1, 1_000),
            _ => None,
        }
    }
}

/// Which events go to which channels.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Project names; empty means every project.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Environments; empty means any, including events without one (build, push).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Event kinds or patterns: `failed` (every `<stage>.failed` but `notify.failed`),
    /// `deploy.succeeded`, `approval.*`, `*.failed`, `*` (everything but
    /// `notify.failed`, which only an exact `notify.failed` selects).
    pub on: Vec<String>,
    pub channels: Vec<String>,
    /// Mention (chat) or mail (email) the commit's author too.
    #[serde(default = "yes")]
    pub mention_author: bool,
}

fn yes() -> bool {
    true
}

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

    /// Every problem of `[notify]`; `kinds` are the event kinds routes may name.
    pub fn problems(&self, kinds: &[&str], projects: &[&str], envs: &[&str]) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |key: String, message: String| p.push(Problem { key, message });
        if !LANGUAGES.contains(&self.language.as_str()) {
            bad(
                "notify.language".into(),
                format!("`{}` is not supported; use `en` or `zh-CN`", self.language),
            );
        }
        for entry in &self.allow_hosts {
            if entry.trim().is_empty() || (entry.contains('/') && parse_cidr(entry).is_none()) {
                bad(
                    "notify.allow_hosts".into(),
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
                bad(key.into(), "must be greater than 0".into());
            }
        }
        for (name, c) in &self.channels {
            for (key, message) in c.problems(&self.allow_hosts) {
                bad(format!("notify.channels.{name}.{key}"), message);
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = |field: &str| format!("notify.routes[{i}].{field}");
            if r.on.is_empty() {
                bad(
                    key("on"),
                    "name at least one event kind, e.g. `failed`".into(),
                );
            }
            for pattern in &r.on {
                if !kinds.iter().any(|k| kind_matches(pattern, k)) {
                    bad(
                        key("on"),
                        format!(
                            "`{pattern}` matches no event kind; use `failed`, `*` or kinds such as {}",
                            kinds.join(", ")
                        ),
                    );
                }
            }
            if r.channels.is_empty() {
                bad(key("channels"), "name at least one channel".into());
            }
            for ch in &r.channels {
                if !self.channels.contains_key(ch) {
                    bad(
                        key("channels"),
                        format!("channel `{ch}` is not defined under [notify.channels]"),
                    );
                }
            }
            for proj in &r.projects {
                if !projects.contains(&proj.as_str()) {
                    bad(
                        key("projects"),
                        format!("project `{proj}` is not defined in [projects]"),
                    );
                }
            }
            for env in &r.environments {
                if !envs.contains(&env.as_str()) {
                    bad(
                        key("environments"),
                        format!("environment `{env}` is not defined in [environments]"),
                    );
                }
            }
        }
        for (who, a) in &self.authors {
            if let Some(m) = &a.mobile
                && !(m.len() >= 5
                    && m.chars()
                        .all(|c| c.is_ascii_digit() || c == '+' || c == '-'))
            {
                bad(
                    format!("notify.authors.\"{who}\".mobile"),
                    format!("`{m}` is not a phone number"),
                );
            }
            if let Some(e) = &a.email
                && !looks_like_email(e)
            {
                bad(
                    format!("notify.authors.\"{who}\".email"),
                    format!("`{e}` is not an e-mail address"),
                );
            }
        }
        p
    }
}

impl ChannelConfig {
    /// Problems as (key under the channel, message).
    fn problems(&self, allow: &[String]) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let kind = self.kind.as_str();
        if !KINDS.contains(&kind) {
            p.push((
                "kind",
                format!(
                    "`{kind}` is not a channel kind; use one of {}",
                    KINDS.join(", ")
                ),
            ));
            return p;
        }
        let email = kind == "email";
        // Keys that do not belong to this kind: an error rather than silently unused.
        let foreign: &[(&'static str, bool)] = &[
            ("url", email && self.url.is_some()),
            (
                "secret",
                self.secret.is_some() && !["dingtalk", "feishu", "webhook"].contains(&kind),
            ),
            (
                "msgtype",
                self.msgtype.is_some() && !["dingtalk", "wecom", "feishu"].contains(&kind),
            ),
            ("smtp_host", !email && self.smtp_host.is_some()),
            ("smtp_port", !email && self.smtp_port.is_some()),
            ("tls", !email && self.tls.is_some()),
            ("ca_file", !email && self.ca_file.is_some()),
            ("username", !email && self.username.is_some()),
            ("password", !email && self.password.is_some()),
            ("from", !email && self.from.is_some()),
            ("to", !email && !self.to.is_empty()),
        ];
        for (key, wrong) in foreign {
            if *wrong {
                p.push((*key, format!("does not apply to a `{kind}` channel")));
            }
        }
        if let Some(lang) = &self.language
            && !LANGUAGES.contains(&lang.as_str())
        {
            p.push((
                "language",
                format!("`{lang}` is not supported; use `en` or `zh-CN`"),
            ));
        }
        if let Some(r) = self.rate_limit
            && (r.messages == 0 || r.window_ms == 0)
        {
            p.push((
                "rate_limit",
                "messages and window_ms must be greater than 0".into(),
            ));
        }
        if let Some(t) = &self.msgtype {
            let allowed: &[&str] = match kind {
                "feishu" => &["interactive", "text"],
                _ => &["markdown", "text"],
            };
            if !allowed.contains(&t.as_str()) {
                p.push((
                    "msgtype",
                    format!("`{t}` is not one of {}", allowed.join(", ")),
                ));
            }
        }
        if email {
            match self.smtp_host.as_deref() {
                None | Some("") => p.push(("smtp_host", "is required for an email channel".into())),
                Some(host) => {
                    if let Err(e) = check_host(host, allow) {
                        p.push(("smtp_host", e));
                    }
                }
            }
            let tls = self.tls.as_deref().unwrap_or("starttls");
            if !["starttls", "tls", "none"].contains(&tls) {
                p.push(("tls", format!("`{tls}` is not one of starttls, tls, none")));
            }
            if let Some(ca) = &self.ca_file {
                if tls == "none" {
                    p.push(("ca_file", "needs `tls` = starttls or tls".into()));
                }
                if let Some(why) = crate::config::pem_certificate_problem(ca) {
                    p.push(("ca_file", why));
                }
            }
            if tls == "none" && self.password.is_some() {
                p.push((
                    "tls",
                    "`none` would send the SMTP password in clear text; use starttls or tls".into(),
                ));
            }
            if self.password.is_some() != self.username.is_some() {
                p.push(("username", "username and password go together".into()));
            }
            match &self.from {
                Some(f) if looks_like_email(f) => {}
                _ => p.push((
                    "from",
                    "is required: the sender address, e.g. `Ferry <ferry@example.com>`".into(),
                )),
            }
            for to in &self.to {
                if !looks_like_email(to) {
                    p.push(("to", format!("`{to}` is not an e-mail address")));
                }
            }
        } else {
            match &self.url {
                None => p.push(("url", format!("is required for a `{kind}` channel"))),
                Some(url) => {
                    if let Err(e) = check_url(url.expose(), allow) {
                        p.push(("url", e));
                    }
                }
            }
        }
        p
    }
}

/// Whether an event kind matches a route's pattern (see [`RouteConfig::on`]).
pub fn kind_matches(pattern: &str, kind: &str) -> bool {
    if kind == "notify.failed" {
        return pattern == kind;
    }
    match pattern {
        "*" => true,
        "failed" => kind.ends_with(".failed"),
        _ => {
            let (mut pat, mut k) = (pattern.split('.'), kind.split('.'));
            loop {
                match (pat.next(), k.next()) {
                    (None, None) => return true,
                    (Some(p), Some(s)) if p == "*" || p == s => {}
                    _ => return false,
                }
            }
        }
    }
}

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

/// Check a notification URL: `http`/`https` only, no credentials in it, and a host
/// that is not loopback, private or link-local unless `allow` lists it. The error says
/// what to change. (Host names are checked again when they resolve, by the notifier.)
pub fn check_url(url: &str, allow: &[String]) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry user:password@; use the channel's `secret`".into());
    }
    let host = split_host_port(authority).ok_or_else(|| "has no valid host[:port]".to_owned())?;
    check_host(host, allow)
}

/// The host of `host[:port]` or `[v6]:port`; `None` when malformed.
fn split_host_port(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (!host.is_empty() && port_ok).then_some(host)
}

/// Check a host name or literal address against the address rules.
pub fn check_host(host: &str, allow: &[String]) -> Result<(), String> {
    let ip = host.parse::<IpAddr>().ok();
    if allowed(host, ip, allow) {
        return Ok(());
    }
    let why = match ip {
        Some(ip) => refused_range(ip),
        None if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Some("loopback")
        }
        None => None,
    };
    match why {
        Some(why) => Err(format!(
            "`{host}` is a {why} address; notifications go to public endpoints unless \
             notify.allow_hosts lists it (e.g. allow_hosts = [\"{host}\"])"
        )),
        None => Ok(()),
    }
}

/// Whether `host` (or its address) is on the allow-list.
pub fn allowed(host: &str, ip: Option<IpAddr>, allow: &[String]) -> bool {
    allow.iter().any(|entry| {
        let entry = entry.trim();
        if entry.eq_ignore_ascii_case(host) {
            return true;
        }
        match (ip, entry.parse::<IpAddr>(), parse_cidr(entry)) {
            (Some(ip), Ok(e), _) => canonical(ip) == canonical(e),
            (Some(ip), _, Some((net, bits))) => in_cidr(canonical(ip), net, bits),
            _ => false,
        }
    })
}

/// Why an address is refused: `Some("private")` etc., `None` for a public address.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || o[0] == 0 {
                Some("non-routable")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("non-routable")
            } else {
                None
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (net, bits) = s.trim().split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((canonical(net), bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |len: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            u128::MAX << (len - u32::from(bits))
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = mask(32);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(b)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = mask(128);
            (u128::from(a) & m) == (u128::from(b) & m)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allow_listed() {
        for url in [
            "http://127.0.0.1:9/x",
            "https://10.1.2.3/hook",
            "http://192.168.0.5",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:80/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://100.64.0.1/",
        ] {
            assert!(check_url(url, &[]).is_err(), "{url} was accepted");
        }
        let allow = vec![
            "127.0.0.1".to_owned(),
            "10.1.0.0/16".to_owned(),
            "localhost".to_owned(),
        ];
        for url in [
            "http://127.0.0.1:9/x",
            "https://10.1.2.3/hook",
            "http://localhost:1/",
        ] {
            assert_eq!(check_url(url, &allow), Ok(()), "{url}");
        }
        assert!(check_url("https://10.2.0.1/", &allow).is_err());
    }

    #[test]
    fn only_http_and_https_without_credentials() {
        assert!(check_url("ftp://example.com/", &[]).is_err());
        assert!(check_url("file:///etc/passwd", &[]).is_err());
        assert!(check_url("https://user:pw@example.com/", &[]).is_err());
        assert!(check_url("https://example.com:99999/", &[]).is_err());
        assert!(check_url("https://oapi.dingtalk.com/robot/send?access_token=x", &[]).is_ok());
    }

    #[test]
    fn kind_patterns() {
        assert!(kind_matches("failed", "build.failed"));
        assert!(!kind_matches("failed", "notify.failed"));
        assert!(!kind_matches("*", "notify.failed"));
        assert!(kind_matches("notify.failed", "notify.failed"));
        assert!(kind_matches("approval.*", "approval.requested"));
        assert!(kind_matches("*.failed", "deploy.failed"));
        assert!(!kind_matches("deploy.*", "approval.requested"));
        assert!(kind_matches("*", "deploy.succeeded"));
    }

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

    #[test]
    fn default_rate_limits_follow_the_platforms() {
        assert_eq!(
            RateLimit::default_for("dingtalk"),
            Some(RateLimit {
                messages: 20,
                window_ms: 60_000
            })
        );
        assert_eq!(RateLimit::default_for("webhook"), None);
    }
}

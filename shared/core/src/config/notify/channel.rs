//! `[notify.channels.<name>]`: one destination, with the keys of its platform.
//!
//! The file keeps one flat table per channel with a `kind` (see `channel_file`); here
//! each platform is a variant holding exactly its own settings.

use crate::config::word::words;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct ChannelConfig {
    /// Overrides `notify.language`.
    pub language: Option<String>,
    /// Overrides the platform's rate limit ([`RateLimit::default_for`]).
    pub rate_limit: Option<RateLimit>,
    /// The platform (`kind` in the file) and its settings.
    #[serde(flatten)]
    pub kind: ChannelKind,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelKind {
    DingTalk(DingTalkChannel),
    WeCom(WeComChannel),
    Feishu(FeishuChannel),
    Slack(SlackChannel),
    Webhook(WebhookChannel),
    Email(EmailChannel),
}

impl ChannelKind {
    /// The platform's word (`kind` in the file).
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::DingTalk(_) => "dingtalk",
            ChannelKind::WeCom(_) => "wecom",
            ChannelKind::Feishu(_) => "feishu",
            ChannelKind::Slack(_) => "slack",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Email(_) => "email",
        }
    }

    /// The webhook URL (every platform but email).
    pub fn url(&self) -> Option<&Secret<String>> {
        match self {
            ChannelKind::DingTalk(c) => Some(&c.url),
            ChannelKind::WeCom(c) => Some(&c.url),
            ChannelKind::Feishu(c) => Some(&c.url),
            ChannelKind::Slack(c) => Some(&c.url),
            ChannelKind::Webhook(c) => Some(&c.url),
            ChannelKind::Email(_) => None,
        }
    }

    /// Every secret of the channel (URL, signing secret, SMTP password), for scrubbing.
    pub fn secrets(&self) -> Vec<&Secret<String>> {
        let signing = match self {
            ChannelKind::DingTalk(c) => c.secret.as_ref(),
            ChannelKind::Feishu(c) => c.secret.as_ref(),
            ChannelKind::Webhook(c) => c.secret.as_ref(),
            ChannelKind::Email(c) => c.password.as_ref(),
            ChannelKind::WeCom(_) | ChannelKind::Slack(_) => None,
        };
        self.url().into_iter().chain(signing).collect()
    }
}

/// A DingTalk group robot.
#[derive(Clone, Debug, Serialize)]
pub struct DingTalkChannel {
    /// The robot's webhook URL: a secret, it carries the robot's token.
    pub url: Secret<String>,
    /// The robot's signing secret (`SEC...`), when it signs.
    pub secret: Option<Secret<String>>,
    pub msgtype: ChatMsgType,
}

/// A WeCom (WeChat Work) group robot.
#[derive(Clone, Debug, Serialize)]
pub struct WeComChannel {
    pub url: Secret<String>,
    pub msgtype: ChatMsgType,
}

/// A Feishu (Lark) custom bot.
#[derive(Clone, Debug, Serialize)]
pub struct FeishuChannel {
    pub url: Secret<String>,
    /// The bot's signing secret, when it signs.
    pub secret: Option<Secret<String>>,
    pub msgtype: FeishuMsgType,
}

/// A Slack incoming webhook.
#[derive(Clone, Debug, Serialize)]
pub struct SlackChannel {
    pub url: Secret<String>,
}

/// Any HTTP endpoint, sent the events as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookChannel {
    pub url: Secret<String>,
    /// Key of the HMAC signature header, when the receiver checks one.
    pub secret: Option<Secret<String>>,
}

/// Mail over SMTP.
#[derive(Clone, Debug, Serialize)]
pub struct EmailChannel {
    pub smtp_host: String,
    /// Default: the port of `tls` ([`SmtpTls::default_port`]).
    pub smtp_port: Option<u16>,
    pub tls: SmtpTls,
    /// PEM file of the CA(s) that signed the SMTP server's certificate, trusted
    /// besides the public roots (a company relay with its own CA).
    pub ca_file: Option<PathBuf>,
    /// Set together with `password`, or neither.
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    /// Sender, e.g. `Ferry <ferry@example.com>`.
    pub from: String,
    /// The team's addresses (the committer is added when a route mentions them).
    pub to: Vec<String>,
}

impl EmailChannel {
    /// `smtp_port`, or the usual port of the TLS mode.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(self.tls.default_port())
    }
}

words! {
    /// DingTalk's and WeCom's message type.
    #[derive(Default)]
    pub enum ChatMsgType ("a message type") {
        #[default]
        Markdown = "markdown",
        Text = "text",
    }
}

words! {
    /// Feishu's message type.
    #[derive(Default)]
    pub enum FeishuMsgType ("a Feishu message type") {
        /// A card.
        #[default]
        Interactive = "interactive",
        Text = "text",
    }
}

words! {
    /// How the SMTP session is protected.
    #[derive(Default)]
    pub enum SmtpTls ("a TLS mode") {
        /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
        #[default]
        StartTls = "starttls",
        /// Implicit TLS from the first byte (port 465).
        Tls = "tls",
        /// No encryption: only for a relay on an allow-listed host (port 25).
        Plain = "none",
    }
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::Plain => 25,
        }
    }
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
    /// The platform's published limit; `None` when there is none.
    pub fn default_for(kind: &ChannelKind) -> Option<RateLimit> {
        let per = |messages, window_ms| {
            Some(RateLimit {
                messages,
                window_ms,
            })
        };
        match kind {
            ChannelKind::DingTalk(_) | ChannelKind::WeCom(_) => per(20, 60_000),
            ChannelKind::Feishu(_) => per(100, 60_000),
            ChannelKind::Slack(_) => per(1, 1_000),
            ChannelKind::Webhook(_) | ChannelKind::Email(_) => None,
        }
    }
}

//! The destinations. Each channel turns a batch of notices (one, or several merged
//! under a rate limit) into one platform message and reads the platform's answer.

mod dingtalk;
mod email;
mod feishu;
mod slack;
mod webhook;
mod wecom;

use crate::http::Http;
use crate::i18n::Lang;
use crate::notice::Notice;
use ferry_shared::notify_config::{
    AuthorConfig, ChannelConfig, ChannelKind, ChatMsgType, FeishuMsgType, NotifyConfig, RateLimit,
};
use std::time::Duration;

/// Why a message did not go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try (5xx, 429, timeout, the platform's "too fast").
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying the same message cannot help (4xx, a refused signature or keyword).
    Permanent(String),
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. } | SendError::Permanent(reason) => reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("notify.channels.{name}: {message}")]
    Invalid { name: String, message: String },
}

enum Kind {
    DingTalk(dingtalk::DingTalk),
    WeCom(wecom::WeCom),
    Feishu(feishu::Feishu),
    Slack(slack::Slack),
    Webhook(webhook::Webhook),
    /// Boxed: the SMTP transport is much larger than the HTTP channels.
    Email(Box<email::Email>),
}

pub struct Channel {
    pub name: String,
    pub lang: Lang,
    pub rate_limit: Option<RateLimit>,
    kind: Kind,
}

impl Channel {
    pub fn new(
        name: &str,
        c: &ChannelConfig,
        notify: &NotifyConfig,
        http: &Http,
    ) -> Result<Channel, ChannelError> {
        let invalid = |message: String| ChannelError::Invalid {
            name: name.to_owned(),
            message,
        };
        let kind = match &c.kind {
            ChannelKind::DingTalk(d) => Kind::DingTalk(dingtalk::DingTalk {
                http: http.clone(),
                url: d.url.clone(),
                secret: d.secret.clone(),
                text: d.msgtype == ChatMsgType::Text,
            }),
            ChannelKind::WeCom(w) => Kind::WeCom(wecom::WeCom {
                http: http.clone(),
                url: w.url.clone(),
                text: w.msgtype == ChatMsgType::Text,
            }),
            ChannelKind::Feishu(f) => Kind::Feishu(feishu::Feishu {
                http: http.clone(),
                url: f.url.clone(),
                secret: f.secret.clone(),
                text: f.msgtype == FeishuMsgType::Text,
            }),
            ChannelKind::Slack(s) => Kind::Slack(slack::Slack {
                http: http.clone(),
                url: s.url.clone(),
            }),
            ChannelKind::Webhook(w) => Kind::Webhook(webhook::Webhook {
                http: http.clone(),
                url: w.url.clone(),
                secret: w.secret.clone(),
            }),
            ChannelKind::Email(e) => Kind::Email(Box::new(
                email::Email::new(name, e, notify).map_err(invalid)?,
            )),
        };
        Ok(Channel {
            name: name.to_owned(),
            lang: Lang::parse(c.language.as_deref().unwrap_or(&notify.language)),
            rate_limit: c.rate_limit.or_else(|| RateLimit::default_for(&c.kind)),
            kind,
        })
    }

    /// Whether these notices fit into one message (the first one always does: a long
    /// one is cut to fit).
    pub fn fits(&self, batch: &[&Notice]) -> bool {
        if batch.len() <= 1 {
            return true;
        }
        match &self.kind {
            Kind::DingTalk(_) => dingtalk::fits(batch),
            Kind::WeCom(w) => w.fits(batch),
            Kind::Feishu(_) => feishu::fits(batch),
            Kind::Slack(_) => slack::fits(batch),
            // One JSON summary, one mail per event.
            Kind::Webhook(_) | Kind::Email(_) => false,
        }
    }

    pub async fn send(
        &self,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        match &self.kind {
            Kind::DingTalk(c) => c.send(batch, mentions).await,
            Kind::WeCom(c) => c.send(batch, mentions).await,
            Kind::Feishu(c) => c.send(batch, mentions).await,
            Kind::Slack(c) => c.send(batch, mentions).await,
            Kind::Webhook(c) => c.send(batch).await,
            Kind::Email(c) => c.send(&self.name, batch, mentions).await,
        }
    }
}

/// One Markdown text for a batch: each notice under its own heading, separated by rules.
pub(crate) fn markdown_batch(batch: &[&Notice], dialect: crate::render::Dialect) -> String {
    use crate::render::{markdown, title};
    match batch {
        [one] => markdown(one, dialect, true),
        many => many
            .iter()
            .map(|n| {
                let head = match dialect {
                    crate::render::Dialect::Markdown => format!("#### {}\n\n", title(n)),
                    crate::render::Dialect::Slack => format!("*{}*\n", title(n)),
                };
                head + &markdown(n, dialect, false)
            })
            .collect::<Vec<_>>()
            .join("\n---\n\n"),
    }
}

/// Plain text for a batch.
pub(crate) fn text_batch(batch: &[&Notice]) -> String {
    batch
        .iter()
        .map(|n| crate::render::chat_text(n))
        .collect::<Vec<_>>()
        .join("\n----------\n")
}

/// De-duplicated values picked from the mentioned authors.
pub(crate) fn pick(
    mentions: &[AuthorConfig],
    f: impl Fn(&AuthorConfig) -> Option<&String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in mentions {
        if let Some(v) = f(m)
            && !out.contains(v)
        {
            out.push(v.clone());
        }
    }
    out
}

/// How a chat platform answers: `{"errcode": 0}` (or `code`) for success.
pub(crate) struct Platform {
    pub name: &'static str,
    pub code_fields: &'static [&'static str],
    /// The code that means "too many messages": worth another try.
    pub too_fast: i64,
    /// What to check when the platform refuses.
    pub hint: &'static str,
}

/// A 2xx answer is only a success when the platform's code says 0.
pub(crate) fn judge(p: &Platform, reply: &crate::http::Reply) -> Result<(), SendError> {
    let name = p.name;
    match platform_code(&reply.body, p.code_fields) {
        Some((0, _)) => Ok(()),
        Some((code, msg)) if code == p.too_fast => Err(SendError::transient(format!(
            "{name}: too many messages (code {code}: {msg})"
        ))),
        Some((code, msg)) => Err(SendError::Permanent(format!(
            "{name} refused the message (code {code}: {msg}); {}",
            p.hint
        ))),
        None => Err(SendError::Permanent(format!(
            "{name} answered HTTP {} without a result code: {}; is the URL a {name} robot?",
            reply.status,
            crate::notice::cut(&reply.body, 200)
        ))),
    }
}

/// Read a chat platform's `{"errcode": 0}`-style answer (`fields` name the code).
fn platform_code(body: &str, fields: &[&str]) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = fields
        .iter()
        .find_map(|f| v.get(*f).and_then(|c| c.as_i64()))?;
    let msg = ["errmsg", "msg", "StatusMessage"]
        .iter()
        .find_map(|f| v.get(*f).and_then(|m| m.as_str()))
        .unwrap_or_default()
        .to_owned();
    Some((code, msg))
}

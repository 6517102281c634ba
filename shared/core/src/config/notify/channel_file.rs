//! A channel as written: one flat table with a `kind`. Parsing checks every key against
//! the kind, so a key the platform does not take is an error that names it rather than
//! a setting silently unused, and builds the platform's variant of [`ChannelKind`].

use super::address::{check_host, check_url};
use super::channel::*;
use super::{LANGUAGES, looks_like_email};
use crate::config::files::pem_certificate_problem;
use crate::config::problem::{Problem, Report};
use crate::config::word::{self, WordError, words};
use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;
use std::str::FromStr;

words! {
    /// The word of `kind`.
    pub enum Platform ("a channel kind") {
        DingTalk = "dingtalk",
        WeCom = "wecom",
        Feishu = "feishu",
        Slack = "slack",
        Webhook = "webhook",
        Email = "email",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelFile {
    kind: String,
    #[serde(default)]
    url: Option<Secret<String>>,
    #[serde(default)]
    secret: Option<Secret<String>>,
    #[serde(default)]
    msgtype: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    smtp_host: Option<String>,
    #[serde(default)]
    smtp_port: Option<u16>,
    #[serde(default)]
    tls: Option<String>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret<String>>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
}

impl ChannelFile {
    /// The channel at `at` (`notify.channels.<name>`), or `None` when it is wrong:
    /// then every problem with it is in `out`. `allow` is `notify.allow_hosts`.
    pub(super) fn parse(
        self,
        at: &str,
        allow: &[String],
        out: &mut Vec<Problem>,
    ) -> Option<ChannelConfig> {
        let platform: Platform = match self.kind.parse() {
            Ok(p) => p,
            Err(e) => {
                out.bad(format!("{at}.kind"), e.to_string());
                return None;
            }
        };
        self.check_foreign(platform, at, out);
        self.check_common(at, out);
        let kind = self.kind(platform, at, allow, out)?;
        Some(ChannelConfig {
            language: self.language,
            rate_limit: self.rate_limit,
            kind,
        })
    }

    /// Keys set that `platform` does not take.
    fn check_foreign(&self, platform: Platform, at: &str, out: &mut Vec<Problem>) {
        use Platform::*;
        let email = platform == Email;
        let foreign = [
            ("url", email && self.url.is_some()),
            (
                "secret",
                self.secret.is_some() && !matches!(platform, DingTalk | Feishu | Webhook),
            ),
            (
                "msgtype",
                self.msgtype.is_some() && !matches!(platform, DingTalk | WeCom | Feishu),
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
        for (key, _) in foreign.into_iter().filter(|(_, set)| *set) {
            out.bad(
                format!("{at}.{key}"),
                format!("does not apply to a `{platform}` channel"),
            );
        }
    }

    /// The keys every platform takes.
    fn check_common(&self, at: &str, out: &mut Vec<Problem>) {
        if let Some(lang) = &self.language
            && !LANGUAGES.contains(&lang.as_str())
        {
            out.bad(
                format!("{at}.language"),
                format!("`{lang}` is not supported; use `en` or `zh-CN`"),
            );
        }
        if let Some(r) = self.rate_limit
            && (r.messages == 0 || r.window_ms == 0)
        {
            out.bad(
                format!("{at}.rate_limit"),
                "messages and window_ms must be greater than 0",
            );
        }
    }

    /// `msgtype` as the platform's enum; its default when unset.
    fn msgtype<T>(&self, at: &str, out: &mut Vec<Problem>) -> T
    where
        T: FromStr<Err = WordError> + Default,
    {
        match &self.msgtype {
            Some(w) => word::parse(w, format!("{at}.msgtype"), T::default(), out),
            None => T::default(),
        }
    }

    /// The platform's variant; `None` when a key it needs is missing or wrong.
    fn kind(
        &self,
        platform: Platform,
        at: &str,
        allow: &[String],
        out: &mut Vec<Problem>,
    ) -> Option<ChannelKind> {
        let secret = self.secret.clone();
        match platform {
            Platform::DingTalk => {
                let (url, msgtype) = (self.url(platform, at, allow, out), self.msgtype(at, out));
                url.map(|url| {
                    ChannelKind::DingTalk(DingTalkChannel {
                        url,
                        secret,
                        msgtype,
                    })
                })
            }
            Platform::WeCom => {
                let (url, msgtype) = (self.url(platform, at, allow, out), self.msgtype(at, out));
                url.map(|url| ChannelKind::WeCom(WeComChannel { url, msgtype }))
            }
            Platform::Feishu => {
                let (url, msgtype) = (self.url(platform, at, allow, out), self.msgtype(at, out));
                url.map(|url| {
                    ChannelKind::Feishu(FeishuChannel {
                        url,
                        secret,
                        msgtype,
                    })
                })
            }
            Platform::Slack => self
                .url(platform, at, allow, out)
                .map(|url| ChannelKind::Slack(SlackChannel { url })),
            Platform::Webhook => self
                .url(platform, at, allow, out)
                .map(|url| ChannelKind::Webhook(WebhookChannel { url, secret })),
            Platform::Email => self.email(at, allow, out).map(ChannelKind::Email),
        }
    }

    /// The webhook URL of a chat platform or `webhook`: required, and checked against
    /// the address rules.
    fn url(
        &self,
        platform: Platform,
        at: &str,
        allow: &[String],
        out: &mut Vec<Problem>,
    ) -> Option<Secret<String>> {
        let Some(url) = &self.url else {
            out.bad(
                format!("{at}.url"),
                format!("is required for a `{platform}` channel"),
            );
            return None;
        };
        if let Err(e) = check_url(url.expose(), allow) {
            out.bad(format!("{at}.url"), e);
        }
        Some(url.clone())
    }

    fn email(&self, at: &str, allow: &[String], out: &mut Vec<Problem>) -> Option<EmailChannel> {
        let key = |field: &str| format!("{at}.{field}");
        let smtp_host = match self.smtp_host.as_deref() {
            None | Some("") => {
                out.bad(key("smtp_host"), "is required for an email channel");
                None
            }
            Some(host) => {
                if let Err(e) = check_host(host, allow) {
                    out.bad(key("smtp_host"), e);
                }
                Some(host.to_owned())
            }
        };
        let tls = match &self.tls {
            Some(w) => word::parse(w, key("tls"), SmtpTls::default(), out),
            None => SmtpTls::default(),
        };
        if let Some(ca) = &self.ca_file {
            if tls == SmtpTls::Plain {
                out.bad(key("ca_file"), "needs `tls` = starttls or tls");
            }
            if let Some(why) = pem_certificate_problem(ca) {
                out.bad(key("ca_file"), why);
            }
        }
        if tls == SmtpTls::Plain && self.password.is_some() {
            out.bad(
                key("tls"),
                "`none` would send the SMTP password in clear text; use starttls or tls",
            );
        }
        if self.password.is_some() != self.username.is_some() {
            out.bad(key("username"), "username and password go together");
        }
        let from = match &self.from {
            Some(f) if looks_like_email(f) => Some(f.clone()),
            _ => {
                out.bad(
                    key("from"),
                    "is required: the sender address, e.g. `Ferry <ferry@example.com>`",
                );
                None
            }
        };
        for to in self.to.iter().filter(|to| !looks_like_email(to)) {
            out.bad(key("to"), format!("`{to}` is not an e-mail address"));
        }
        Some(EmailChannel {
            smtp_host: smtp_host?,
            smtp_port: self.smtp_port,
            tls,
            ca_file: self.ca_file.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            from: from?,
            to: self.to.clone(),
        })
    }
}

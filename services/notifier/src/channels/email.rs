//! Email over SMTP (lettre): STARTTLS, implicit TLS or plain (a local relay), optional
//! authentication, a text and an HTML part. The team's `to` addresses get every
//! message; the committer is added when the route mentions the author. The
//! `Message-ID` is derived from the event and the channel, so a repeat is the same mail.

use super::{SendError, pick};
use crate::notice::Notice;
use ferry_shared::notify_config::{AuthorConfig, ChannelConfig, NotifyConfig};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    from: Mailbox,
    to: Vec<String>,
    allow: Vec<String>,
}

impl Email {
    pub fn new(name: &str, c: &ChannelConfig, notify: &NotifyConfig) -> Result<Self, String> {
        let host = c.smtp_host.clone().ok_or("`smtp_host` is required")?;
        let tls = c.tls.as_deref().unwrap_or("starttls");
        let builder = match tls {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
            _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &host,
            )),
        }
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))?;
        let port = c.smtp_port.unwrap_or(match tls {
            "tls" => 465,
            "starttls" => 587,
            _ => 25,
        });
        let mut builder = builder
            .port(port)
            .timeout(Some(Duration::from_millis(notify.timeout_ms)));
        if let (Some(user), Some(pass)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().clone()));
        }
        let from = c
            .from
            .as_deref()
            .unwrap_or_default()
            .parse::<Mailbox>()
            .map_err(|e| format!("`from` is not a mailbox ({e})"))?;
        tracing::debug!(channel = name, %host, port, tls, "email channel ready");
        Ok(Self {
            transport: builder.build(),
            host,
            port,
            from,
            to: c.to.clone(),
            allow: notify.allow_hosts.clone(),
        })
    }

    pub async fn send(
        &self,
        channel: &str,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        let mut recipients: Vec<String> = self.to.clone();
        for email in pick(mentions, |a| a.email.as_ref()) {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&email)) {
                recipients.push(email);
            }
        }
        if recipients.is_empty() {
            tracing::debug!(
                channel,
                "no recipients (no `to`, no known author e-mail): nothing sent"
            );
            return Ok(());
        }
        self.check_address().await?;
        for n in batch {
            let mail = self.message(channel, n, &recipients)?;
            self.transport.send(mail).await.map_err(|e| {
                let what = format!("SMTP {}:{}: {e}", self.host, self.port);
                if e.is_permanent() {
                    SendError::Permanent(format!("{what}; check the addresses and the account"))
                } else {
                    SendError::transient(what)
                }
            })?;
        }
        Ok(())
    }

    fn message(&self, channel: &str, n: &Notice, to: &[String]) -> Result<Message, SendError> {
        let revision = n
            .revision
            .as_deref()
            .map(|r| format!(" (r{r})"))
            .unwrap_or_default();
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(format!("[Ferry] {}{revision}", n.headline))
            .message_id(Some(format!("<{}.{channel}@ferry>", n.event_id)));
        for addr in to {
            let mailbox = addr.parse::<Mailbox>().map_err(|e| {
                SendError::Permanent(format!("`{addr}` is not an e-mail address ({e})"))
            })?;
            b = b.to(mailbox);
        }
        b.multipart(MultiPart::alternative_plain_html(
            crate::render::text(n),
            crate::render::html(n),
        ))
        .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))
    }

    /// The server's name must not resolve to an internal address unless allowed.
    async fn check_address(&self) -> Result<(), SendError> {
        let addrs: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| SendError::transient(format!("cannot resolve {}: {e}", self.host)))?
                .collect();
        crate::http::permitted(&self.host, &addrs, &self.allow)
            .map(|_| ())
            .map_err(|e| SendError::Permanent(e.to_string()))
    }
}

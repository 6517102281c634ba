//! Email over SMTP (lettre): STARTTLS, implicit TLS or plain (a local relay), optional
//! authentication, a text and an HTML part. The team's `to` addresses get every
//! message; the committer is added when the route mentions the author. The
//! `Message-ID` is derived from the event and the channel, so a repeat is the same mail.

use super::{SendError, pick};
use crate::notice::Notice;
use ferry_shared::notify_config::{AuthorConfig, EmailChannel, NotifyConfig, SmtpTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
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
    pub fn new(name: &str, c: &EmailChannel, notify: &NotifyConfig) -> Result<Self, String> {
        let host = c.smtp_host.clone();
        let tls = c.tls;
        let params = || tls_parameters(&host, c.ca_file.as_deref());
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).tls(match tls {
                SmtpTls::Tls => Tls::Wrapper(params()?),
                SmtpTls::StartTls => Tls::Required(params()?),
                SmtpTls::Plain => Tls::None,
            });
        let port = c.port();
        let mut builder = builder
            .port(port)
            .timeout(Some(Duration::from_millis(notify.timeout_ms)));
        if let (Some(user), Some(pass)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().clone()));
        }
        let from = c
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("`from` is not a mailbox ({e})"))?;
        tracing::debug!(channel = name, %host, port, %tls, "email channel ready");
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
                let mut what = format!("SMTP {}:{}: {e}", self.host, self.port);
                if what.contains("certificate") {
                    what.push_str(&format!(
                        "; if a private CA signed the server's certificate, set \
                         notify.channels.{channel}.ca_file to it"
                    ));
                }
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
        // The headline names the revision (from the push) on one line; lettre encodes
        // a CR/LF in a subject all the same (RFC 2047, tested), so no header can be added.
        let subject: String = format!("[Ferry] {}", n.headline)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
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

/// The server's certificate must name `host` and chain to a public root or to the
/// CA(s) in `ca_file`.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read `ca_file` {}: {e}", path.display()))?;
        let ca = Certificate::from_pem(&pem)
            .map_err(|e| format!("`ca_file` {} is not a PEM certificate: {e}", path.display()))?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
}

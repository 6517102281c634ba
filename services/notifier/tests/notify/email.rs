//! A real SMTP server (aiosmtpd, Debian's python3-aiosmtpd) receives the mail.

use crate::*;
use notifier::Notifier;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// aiosmtpd writing each message to `<dir>/<n>.json` (envelope recipients, data, whether
/// it came over TLS and who logged in). Modes: `plain`, `starttls` (required before
/// AUTH and MAIL), `tls` (implicit); with a login and password, AUTH is offered.
const SMTP_SINK: &str = r#"
import json, os, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
out, port, mode, cert, key, login, password = sys.argv[1:8]
class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith(".json")])
        tmp = os.path.join(out, "%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace"),
                       "tls": server.transport.get_extra_info("ssl_object") is not None,
                       "login": session.auth_data.login.decode() if session.authenticated else None}, f)
        os.rename(tmp, os.path.join(out, "%04d.json" % n))
        return "250 Message accepted"
def check(server, session, envelope, mechanism, data):
    ok = (data.login, data.password) == (login.encode(), password.encode())
    return AuthResult(success=ok, auth_data=data)
kw = {}
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if mode == "starttls":
        kw = dict(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    else:
        kw = dict(ssl_context=ctx, auth_require_tls=False)
if login:
    kw.update(authenticator=check)
c = Controller(Keep(), hostname="127.0.0.1", port=int(port), **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

const SMTP_USER: &str = "ferry-mailer";
const SMTP_PASSWORD: &str = "smtp-pass-0815";

struct SmtpSink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        Self::start_mode("plain")
    }

    /// `mode`: `plain`, `starttls` or `tls`. TLS modes serve a certificate for 127.0.0.1
    /// signed by a private CA, `<dir>/ca.pem`, and require SMTP_USER's login.
    fn start_mode(mode: &str) -> SmtpSink {
        let dir = std::env::temp_dir().join(format!("ferry-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (login, password) = if mode == "plain" {
            ("", "")
        } else {
            ferry_testkit::tls::private_ca_in(&dir).unwrap();
            (SMTP_USER, SMTP_PASSWORD)
        };
        let port = ferry_testkit::free_port();
        // Debian's python3-aiosmtpd lives with the system interpreter.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let file = |f: &str| dir.join(f).to_str().unwrap().to_owned();
        let mut child = Command::new(python)
            .args([
                "-c",
                SMTP_SINK,
                dir.to_str().unwrap(),
                &port.to_string(),
                mode,
            ])
            .args([file("cert.pem"), file("key.pem")])
            .args([login, password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start (is python3-aiosmtpd installed?)"
        );
        SmtpSink { child, dir, port }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_team_and_the_committer_get_a_text_and_html_mail() {
    let smtp = SmtpSink::start();
    let cfg = config(&format!(
        r#"
        [notify.channels.mail]
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        tls = "none"
        from = "Ferry <ferry@example.com>"
        to = ["team@example.com"]
        [[notify.routes]]
        on = ["failed"]
        channels = ["mail"]
        [[notify.routes]]
        on = ["deploy.succeeded"]
        environments = ["production"]
        channels = ["mail"]
        mention_author = false
        [notify.authors."alice"]
        email = "alice@example.com"
        "#,
        port = smtp.port
    ));
    let n = Notifier::new(&cfg).unwrap();
    let src = source();
    n.notify(&src).await;
    let failed = build_failed(&src, "step 2/4 RUN make failed: <missing header>");
    let report = n.notify(&failed).await;
    assert_eq!(report.sent, vec!["mail".to_owned()], "{report:?}");
    let deployed = src.follow(
        ferry_shared::event::Event::DeploySucceeded(ferry_shared::event::DeploySucceeded {
            revision: "42".into(),
            image: "r/shop:42@sha256:00".into(),
            previous_image: Some("r/shop:41@sha256:11".into()),
            hosts: vec![],
        }),
        Some("production"),
    );
    assert_eq!(n.notify(&deployed).await.sent.len(), 1);

    assert!(
        ferry_testkit::wait_until(Duration::from_secs(5), || async {
            smtp.messages().len() == 2
        })
        .await,
        "the SMTP server got {} messages",
        smtp.messages().len()
    );
    let mails = smtp.messages();
    let failure = &mails[0];
    assert_eq!(failure["from"], "ferry@example.com");
    assert_eq!(
        failure["to"],
        serde_json::json!(["team@example.com", "alice@example.com"])
    );
    let data = failure["data"].as_str().unwrap();
    for needle in [
        "Subject: [Ferry] shop r42: build failed",
        &format!("Message-ID: <{}.mail@ferry>", failed.event_id),
        "multipart/alternative",
        "text/plain",
        "text/html",
        "Revision: r42",
        "&lt;missing header&gt;",
    ] {
        assert!(data.contains(needle), "`{needle}` missing from:\n{data}");
    }
    // The production success goes to the team only (that route does not mention).
    assert_eq!(mails[1]["to"], serde_json::json!(["team@example.com"]));
    let data = mails[1]["data"].as_str().unwrap();
    assert!(
        data.contains(&format!("Message-ID: <{}.mail@ferry>", deployed.event_id)),
        "{data}"
    );
}

fn mail_channel(smtp: &SmtpSink, tls: &str, ca_file: Option<&Path>) -> String {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"", p.display()))
        .unwrap_or_default();
    format!(
        r#"
        [notify.channels.mail]
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        tls = "{tls}"
        {ca}
        username = "{SMTP_USER}"
        password = "{SMTP_PASSWORD}"
        from = "Ferry <ferry@example.com>"
        to = ["team@example.com"]
        [[notify.routes]]
        on = ["failed"]
        channels = ["mail"]
        "#,
        port = smtp.port
    )
}

/// STARTTLS and implicit TLS to a relay whose certificate a private CA signed: the mail
/// arrives encrypted and authenticated, and the password never crossed in clear (the
/// STARTTLS server refuses AUTH before TLS).
#[tokio::test]
async fn mail_goes_over_starttls_and_implicit_tls_to_a_relay_with_a_private_ca() {
    for tls in ["starttls", "tls"] {
        let smtp = SmtpSink::start_mode(tls);
        let cfg = config(&mail_channel(&smtp, tls, Some(&smtp.ca_file())));
        let n = Notifier::new(&cfg).unwrap();
        let src = source();
        n.notify(&src).await;
        let report = n
            .notify(&build_failed(&src, "step 2/4 RUN make failed"))
            .await;
        assert_eq!(report.sent, vec!["mail".to_owned()], "{tls}: {report:?}");
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1, "{tls}");
        assert_eq!(mails[0]["tls"], true, "{tls}");
        assert_eq!(mails[0]["login"], SMTP_USER, "{tls}");
        assert_eq!(mails[0]["to"], serde_json::json!(["team@example.com"]));
        let data = mails[0]["data"].as_str().unwrap();
        assert!(
            data.contains("Subject: [Ferry] shop r42: build failed"),
            "{data}"
        );
        assert!(!data.contains(SMTP_PASSWORD), "{data}");
    }
}

/// Without `ca_file` the private CA's certificate is not trusted: nothing is sent, and
/// the reason says it was the certificate.
#[tokio::test]
async fn an_untrusted_relay_certificate_sends_nothing_and_says_why() {
    let smtp = SmtpSink::start_mode("tls");
    let cfg = config(&mail_channel(&smtp, "tls", None));
    let n = Notifier::new(&cfg).unwrap();
    let src = source();
    n.notify(&src).await;
    let report = n.notify(&build_failed(&src, "boom")).await;
    assert!(report.sent.is_empty(), "{report:?}");
    let (channel, reason) = report
        .transient
        .iter()
        .chain(&report.permanent)
        .next()
        .expect("a failure with its reason");
    assert_eq!(channel, "mail");
    assert!(reason.contains("127.0.0.1:"), "{reason}");
    assert!(reason.contains("invalid peer certificate"), "{reason}");
    assert!(reason.contains("notify.channels.mail.ca_file"), "{reason}");
    assert!(smtp.messages().is_empty());
}

/// A `ca_file` that is no certificate is a start-up error naming the key.
#[test]
fn a_ca_file_that_is_not_a_certificate_is_refused_at_start_up() {
    let smtp = SmtpSink::start_mode("tls");
    let bad = smtp.dir.join("key.pem");
    let err = try_config(&mail_channel(&smtp, "tls", Some(&bad))).unwrap_err();
    assert!(err.contains("ca_file"), "{err}");
    assert!(err.contains("no PEM certificate"), "{err}");
}

/// A revision (or any text from a push) with CR/LF must not add mail headers or
/// recipients; the commit message arrives as text in the body.
#[tokio::test]
async fn a_hostile_revision_adds_no_header_and_no_recipient() {
    let smtp = SmtpSink::start();
    let cfg = config(&format!(
        r#"
        [notify.channels.mail]
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        tls = "none"
        from = "Ferry <ferry@example.com>"
        to = ["team@example.com"]
        [[notify.routes]]
        on = ["failed"]
        channels = ["mail"]
        "#,
        port = smtp.port
    ));
    let n = Notifier::new(&cfg).unwrap();
    let mut src = crate::hostile::hostile_source();
    if let ferry_shared::event::Event::SourceChanged(s) = &mut src.event {
        s.revision = "42\r\nBcc: attacker@evil.example\r\nX-Injected: yes\n\nbody".into();
    }
    n.notify(&src).await;
    let report = n.notify(&build_failed(&src, "boom")).await;
    assert_eq!(report.sent, vec!["mail".to_owned()], "{report:?}");
    assert!(
        ferry_testkit::wait_until(Duration::from_secs(5), || async {
            smtp.messages().len() == 1
        })
        .await
    );
    let mail = &smtp.messages()[0];
    assert_eq!(mail["to"], serde_json::json!(["team@example.com"]));
    let data = mail["data"].as_str().unwrap();
    let headers = data.split("\r\n\r\n").next().unwrap();
    for bad in ["\nBcc:", "\nX-Injected:", "\nbody"] {
        assert!(!headers.contains(bad), "`{bad}` in the headers:\n{headers}");
    }
    // One (folded) line, control characters replaced.
    let unfolded = headers.replace("\r\n ", " ");
    assert!(
        unfolded.contains("Subject: [Ferry] shop 42  Bcc: attacker@evil.example  X-Injected: yes  body: build failed"),
        "{unfolded}"
    );
}

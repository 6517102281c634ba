//! A real SMTP server (aiosmtpd, Debian's python3-aiosmtpd) receives the mail.

use crate::*;
use notifier::Notifier;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// aiosmtpd writing each message to `<dir>/<n>.json` (envelope recipients + data).
const SMTP_SINK: &str = r#"
import asyncio, json, os, sys
from aiosmtpd.controller import Controller
out, port = sys.argv[1], int(sys.argv[2])
class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith(".json")])
        tmp = os.path.join(out, "%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(tmp, os.path.join(out, "%04d.json" % n))
        return "250 Message accepted"
c = Controller(Keep(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

struct SmtpSink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = std::env::temp_dir().join(format!("ferry-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = ferry_testkit::free_port();
        // Debian's python3-aiosmtpd lives with the system interpreter.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .args(["-c", SMTP_SINK, dir.to_str().unwrap(), &port.to_string()])
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
        "Subject: [Ferry] shop: build failed (r42)",
        &format!("Message-ID: <{}.mail@ferry>", failed.event_id),
        "multipart/alternative",
        "text/plain",
        "text/html",
        "Revision: 42",
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

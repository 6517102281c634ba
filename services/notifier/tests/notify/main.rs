//! The notifier against real endpoints on loopback: one HTTP sink per platform, a real
//! SMTP server (aiosmtpd), and RabbitMQ for retries, parking and redeliveries.
//! Expected signatures are computed by Python and OpenSSL from the platforms'
//! documented algorithms, not by the code under test.

mod channels;
mod delivery;
mod email;
mod hostile;
mod messages;
mod sink;

use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged, StageFailed};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A configuration with project `shop` (staging, production) and the given `[notify]`
/// tables; the broker is the harness's when it is set.
pub fn config(notify: &str) -> Arc<FerryConfig> {
    Arc::new(try_config(notify).unwrap_or_else(|e| panic!("{e}")))
}

pub fn try_config(notify: &str) -> Result<FerryConfig, String> {
    let amqp = std::env::var("FERRY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [200, 400]
        max_attempts = 3
        [services.notifier]
        admin_listen = "127.0.0.1:0"
        [registry]
        address = "127.0.0.1:5999"
        username = "robot"
        password = "registry-pass-4711"
        [environments.staging]
        [environments.production]
        [projects.shop]
        image = "shop/web"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/shop" }}
        [notify]
        allow_hosts = ["127.0.0.1"]
        backoff_ms = 100
        {notify}
        "#,
        ns = ferry_testkit::unique_namespace(),
    );
    FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).map_err(|e| e.to_string())
}

/// A run's first event: revision 42 by alice.
pub fn source() -> Envelope {
    Envelope::new_run(
        "shop",
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "svn://127.0.0.1/shop".into(),
            reference: None,
            revision: "42".into(),
            author: Some("alice".into()),
            message: Some("Fix the checkout total".into()),
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

pub fn stage_failed(src: &Envelope, service: &str, reason: &str) -> StageFailed {
    StageFailed {
        service: service.into(),
        reason: reason.into(),
        attempts: 1,
        failed_event_id: src.event_id,
        failed_kind: src.kind().into(),
    }
}

/// `build.failed` following `src`.
pub fn build_failed(src: &Envelope, reason: &str) -> Envelope {
    src.follow(
        Event::BuildFailed(stage_failed(src, "builder", reason)),
        None,
    )
}

fn run(cmd: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// DingTalk's documented Python example: quote_plus(b64(hmac(secret, "ts\nsecret"))).
pub fn python_dingtalk_sign(timestamp: &str, secret: &str) -> String {
    run(
        "python3",
        &[
            "-c",
            "import base64,hashlib,hmac,sys,urllib.parse\n\
             ts,secret=sys.argv[1],sys.argv[2]\n\
             d=hmac.new(secret.encode(),f'{ts}\\n{secret}'.encode(),digestmod=hashlib.sha256).digest()\n\
             print(urllib.parse.quote_plus(base64.b64encode(d)))",
            timestamp,
            secret,
        ],
        None,
    )
}

/// Feishu's documented Python example: b64(hmac(key="ts\nsecret", msg=b"")).
pub fn python_feishu_sign(timestamp: &str, secret: &str) -> String {
    run(
        "python3",
        &[
            "-c",
            "import base64,hashlib,hmac,sys\n\
             ts,secret=sys.argv[1],sys.argv[2]\n\
             d=hmac.new(f'{ts}\\n{secret}'.encode('utf-8'),digestmod=hashlib.sha256).digest()\n\
             print(base64.b64encode(d).decode())",
            timestamp,
            secret,
        ],
        None,
    )
}

/// `openssl dgst -sha256 -hmac <secret>` over the body, as `sha256=<hex>`.
pub fn openssl_hmac_hex(secret: &str, body: &[u8]) -> String {
    let out = run("openssl", &["dgst", "-sha256", "-hmac", secret], Some(body));
    let hex = out.rsplit(' ').next().unwrap();
    format!("sha256={hex}")
}

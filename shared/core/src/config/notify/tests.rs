//! Channels as written become one variant per platform; everything wrong with them is
//! reported at once, by key.

use super::*;
use crate::config::FerryConfig;
use std::path::Path;

fn load(text: &str) -> Result<FerryConfig, String> {
    FerryConfig::from_toml_with_env(text, Path::new("test.toml")).map_err(|e| e.to_string())
}

fn channels(text: &str) -> BTreeMap<String, ChannelConfig> {
    load(text).unwrap().notify.channels
}

#[test]
fn each_kind_parses_into_its_platform_with_its_own_keys() {
    let c = channels(
        r#"
        [notify.channels.ding]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=t"
        secret = "SEC123"
        msgtype = "text"
        [notify.channels.wecom]
        kind = "wecom"
        url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
        [notify.channels.feishu]
        kind = "feishu"
        url = "https://open.feishu.cn/open-apis/bot/v2/hook/h"
        language = "zh-CN"
        [notify.channels.slack]
        kind = "slack"
        url = "https://hooks.slack.com/services/T/B/x"
        rate_limit = { messages = 5, window_ms = 1000 }
        [notify.channels.hook]
        kind = "webhook"
        url = "https://ci.example.com/ferry"
        [notify.channels.mail]
        kind = "email"
        smtp_host = "smtp.example.com"
        tls = "tls"
        from = "Ferry <ferry@example.com>"
        to = ["team@example.com"]
        "#,
    );
    match &c["ding"].kind {
        ChannelKind::DingTalk(d) => {
            assert_eq!(d.msgtype, ChatMsgType::Text);
            assert_eq!(
                d.secret.as_ref().map(|s| s.expose().as_str()),
                Some("SEC123")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&c["wecom"].kind, ChannelKind::WeCom(w) if w.msgtype == ChatMsgType::Markdown)
    );
    assert!(
        matches!(&c["feishu"].kind, ChannelKind::Feishu(f) if f.msgtype == FeishuMsgType::Interactive)
    );
    assert_eq!(c["feishu"].language.as_deref(), Some("zh-CN"));
    assert!(matches!(c["slack"].kind, ChannelKind::Slack(_)));
    assert_eq!(c["slack"].rate_limit.map(|r| r.messages), Some(5));
    assert!(matches!(&c["hook"].kind, ChannelKind::Webhook(w) if w.secret.is_none()));
    match &c["mail"].kind {
        ChannelKind::Email(e) => {
            assert_eq!((e.tls, e.port()), (SmtpTls::Tls, 465));
            assert_eq!(e.from, "Ferry <ferry@example.com>");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c["mail"].kind.name(), "email");
}

#[test]
fn default_rate_limits_follow_the_platforms() {
    let c = channels(
        r#"
        [notify.channels.ding]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=t"
        [notify.channels.hook]
        kind = "webhook"
        url = "https://ci.example.com/ferry"
        "#,
    );
    assert_eq!(
        RateLimit::default_for(&c["ding"].kind),
        Some(RateLimit {
            messages: 20,
            window_ms: 60_000
        })
    );
    assert_eq!(RateLimit::default_for(&c["hook"].kind), None);
}

#[test]
fn a_bad_kind_names_the_key_and_every_kind() {
    let err = load("[notify.channels.team]\nkind = \"teams\"\nurl = \"https://x.example.com\"\n")
        .unwrap_err();
    assert!(
        err.contains(
            "notify.channels.team.kind: `teams` is not a channel kind; use `dingtalk`, `wecom`, \
             `feishu`, `slack`, `webhook` or `email`"
        ),
        "{err}"
    );
}

#[test]
fn a_key_of_another_platform_is_named() {
    let err = load(
        r#"
        [notify.channels.slack]
        kind = "slack"
        url = "https://hooks.slack.com/services/T/B/x"
        secret = "s"
        msgtype = "text"
        [notify.channels.mail]
        kind = "email"
        url = "https://x.example.com"
        smtp_host = "smtp.example.com"
        from = "ferry@example.com"
        [notify.channels.ding]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=t"
        smtp_host = "smtp.example.com"
        to = ["a@example.com"]
        "#,
    )
    .unwrap_err();
    for line in [
        "notify.channels.slack.secret: does not apply to a `slack` channel",
        "notify.channels.slack.msgtype: does not apply to a `slack` channel",
        "notify.channels.mail.url: does not apply to a `email` channel",
        "notify.channels.ding.smtp_host: does not apply to a `dingtalk` channel",
        "notify.channels.ding.to: does not apply to a `dingtalk` channel",
    ] {
        assert!(err.contains(line), "{line} missing from:\n{err}");
    }
}

#[test]
fn bad_message_types_and_tls_modes_name_the_choices() {
    let err = load(
        r#"
        [notify.channels.ding]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=t"
        msgtype = "card"
        [notify.channels.feishu]
        kind = "feishu"
        url = "https://open.feishu.cn/open-apis/bot/v2/hook/h"
        msgtype = "markdown"
        [notify.channels.mail]
        kind = "email"
        smtp_host = "smtp.example.com"
        tls = "ssl"
        from = "ferry@example.com"
        "#,
    )
    .unwrap_err();
    for line in [
        "notify.channels.ding.msgtype: `card` is not a message type; use `markdown` or `text`",
        "notify.channels.feishu.msgtype: `markdown` is not a Feishu message type; use `interactive` or `text`",
        "notify.channels.mail.tls: `ssl` is not a TLS mode; use `starttls`, `tls` or `none`",
    ] {
        assert!(err.contains(line), "{line} missing from:\n{err}");
    }
}

#[test]
fn every_channel_problem_is_reported_at_once() {
    let err = load(
        r#"
        [notify]
        language = "fr"
        [notify.channels.team]
        kind = "teams"
        [notify.channels.ding]
        kind = "dingtalk"
        [notify.channels.local]
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        [notify.channels.mail]
        kind = "email"
        tls = "none"
        username = "u"
        password = "p"
        to = ["not-an-address"]
        [[notify.routes]]
        on = ["failed"]
        channels = ["team", "ding", "nowhere"]
        "#,
    )
    .unwrap_err();
    for key in [
        "notify.language:",
        "notify.channels.team.kind:",
        "notify.channels.ding.url: is required for a `dingtalk` channel",
        "notify.channels.local.url: `127.0.0.1` is a loopback address",
        "notify.channels.mail.smtp_host: is required",
        "notify.channels.mail.tls: `none` would send the SMTP password in clear text",
        "notify.channels.mail.from: is required",
        "notify.channels.mail.to: `not-an-address`",
        "notify.routes[0].channels: channel `nowhere` is not defined",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    // A channel that is wrong is reported where it is, not again as missing.
    assert!(!err.contains("channel `team` is not defined"), "{err}");
}

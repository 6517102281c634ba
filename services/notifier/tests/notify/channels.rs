//! One sink per platform: the exact body shape, mentions, and the signature.

use crate::sink::Sink;
use crate::*;
use ferry_shared::event::{CheckResult, Event, TestFailure, TestReport};
use notifier::Notifier;

const DING_SECRET: &str = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
const FEISHU_SECRET: &str = "feishu-signing-secret-123";

fn authors() -> &'static str {
    r#"
    [notify.authors.alice]
    name = "Alice"
    mobile = "13800000000"
    email = "alice@example.com"
    wecom = "alice.w"
    feishu = "ou_alice"
    slack = "U0ALICE"
    "#
}

fn route(channel: &str) -> String {
    format!("[[notify.routes]]\non = [\"failed\"]\nchannels = [\"{channel}\"]\n")
}

/// Run `src` (for the author) and `event` through a notifier built from `cfg`.
async fn notify(
    cfg: &ferry_shared::config::FerryConfig,
    src: &Envelope,
    event: &Envelope,
) -> notifier::Report {
    let n = Notifier::new(cfg).unwrap();
    n.notify(src).await;
    n.notify(event).await
}

#[tokio::test]
async fn dingtalk_markdown_is_signed_and_mentions_the_committer() {
    let sink = Sink::start(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let cfg = config(&format!(
        "[notify.channels.ding]\nkind = \"dingtalk\"\nurl = \"{}/robot/send?access_token=tok-abcdef123456\"\nsecret = \"{DING_SECRET}\"\n{}{}",
        sink.url,
        route("ding"),
        authors()
    ));
    let src = source();
    // The cause quotes a secret (the registry password): it must not reach the chat.
    let failed = build_failed(
        &src,
        "step 3/5 RUN composer install failed\nauth registry-pass-4711 refused",
    );
    let before = chrono::Utc::now().timestamp_millis();
    let report = notify(&cfg, &src, &failed).await;
    assert_eq!(report.sent, vec!["ding".to_owned()], "{report:?}");

    let reqs = sink.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(
        r.path_and_query
            .starts_with("/robot/send?access_token=tok-abcdef123456&timestamp=")
    );
    let ts = r.query("timestamp").unwrap();
    let ts_ms: i64 = ts.parse().unwrap();
    assert!(ts_ms >= before && ts_ms <= chrono::Utc::now().timestamp_millis());
    assert_eq!(
        r.query("sign").unwrap(),
        python_dingtalk_sign(&ts, DING_SECRET)
    );

    let body = r.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["at"]["atMobiles"], serde_json::json!(["13800000000"]));
    assert_eq!(body["at"]["isAtAll"], false);
    assert_eq!(body["markdown"]["title"], "❌ shop r42: build failed");
    let text = body["markdown"]["text"].as_str().unwrap();
    for needle in [
        "### ❌ shop r42: build failed",
        "**Revision**: r42",
        "**Author**: alice",
        "**Commit**: Fix the checkout total",
        "> step 3/5 RUN composer install failed",
        "[redacted]",
        &format!("`ferry logs {}`", src.run_id),
        "@13800000000",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    assert!(!r.body.windows(18).any(|w| w == b"registry-pass-4711"));
    assert!(!String::from_utf8_lossy(&r.body).contains(DING_SECRET));
}

#[tokio::test]
async fn dingtalk_errcode_is_a_failure_and_a_refusal_is_not_retried() {
    let sink = Sink::start(200, r#"{"errcode":310000,"errmsg":"sign not match"}"#).await;
    let cfg = config(&format!(
        "[notify.channels.ding]\nkind = \"dingtalk\"\nmsgtype = \"text\"\nurl = \"{}/robot/send?access_token=t\"\n{}",
        sink.url,
        route("ding"),
    ));
    let src = source();
    let report = notify(&cfg, &src, &build_failed(&src, "boom")).await;
    assert!(report.sent.is_empty());
    assert_eq!(report.permanent.len(), 1, "{report:?}");
    assert!(report.permanent[0].1.contains("310000"), "{report:?}");
    assert_eq!(sink.requests().len(), 1);
    let body = sink.requests()[0].json();
    assert_eq!(body["msgtype"], "text");
    assert!(
        body["text"]["content"]
            .as_str()
            .unwrap()
            .contains("build failed")
    );
}

#[tokio::test]
async fn wecom_text_lists_mobiles_and_markdown_mentions_user_ids_in_chinese() {
    let sink = Sink::start(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let cfg = config(&format!(
        "language = \"zh-CN\"\n\
         [notify.channels.wx-text]\nkind = \"wecom\"\nmsgtype = \"text\"\nurl = \"{u}/cgi-bin/webhook/send?key=k1\"\n\
         [notify.channels.wx-md]\nkind = \"wecom\"\nurl = \"{u}/cgi-bin/webhook/send?key=k2\"\n\
         [[notify.routes]]\non = [\"failed\"]\nchannels = [\"wx-text\", \"wx-md\"]\n{a}",
        u = sink.url,
        a = authors()
    ));
    let src = source();
    let report = notify(&cfg, &src, &build_failed(&src, "编译失败")).await;
    assert_eq!(report.sent.len(), 2, "{report:?}");
    let reqs = sink.requests();
    let text = reqs
        .iter()
        .find(|r| r.path_and_query.ends_with("key=k1"))
        .unwrap()
        .json();
    assert_eq!(text["msgtype"], "text");
    assert_eq!(
        text["text"]["mentioned_mobile_list"],
        serde_json::json!(["13800000000"])
    );
    assert_eq!(
        text["text"]["mentioned_list"],
        serde_json::json!(["alice.w"])
    );
    let content = text["text"]["content"].as_str().unwrap();
    assert!(
        content.contains("shop r42: 构建失败") && content.contains("版本: r42"),
        "{content}"
    );
    let md = reqs
        .iter()
        .find(|r| r.path_and_query.ends_with("key=k2"))
        .unwrap()
        .json();
    assert_eq!(md["msgtype"], "markdown");
    let content = md["markdown"]["content"].as_str().unwrap();
    assert!(
        content.contains("**提交人**: alice") && content.ends_with("<@alice.w>"),
        "{content}"
    );
}

#[tokio::test]
async fn feishu_card_is_signed_as_documented_and_code_not_zero_fails() {
    let sink = Sink::start(200, r#"{"code":0,"msg":"success","data":{}}"#).await;
    let cfg = config(&format!(
        "[notify.channels.lark]\nkind = \"feishu\"\nurl = \"{}/open-apis/bot/v2/hook/abc-def\"\nsecret = \"{FEISHU_SECRET}\"\n{}{}",
        sink.url,
        route("lark"),
        authors()
    ));
    let src = source();
    let failed = src.follow(
        Event::TestFailed(TestFailure {
            failure: stage_failed(&src, "tester", "2 of 3 checks failed"),
            report: Some(TestReport {
                revision: "42".into(),
                image: "r/shop:42@sha256:00".into(),
                previous_image: None,
                checks: vec![
                    CheckResult {
                        name: "GET /healthz".into(),
                        passed: true,
                        millis: 12,
                        detail: None,
                    },
                    CheckResult {
                        name: "GET /cart".into(),
                        passed: false,
                        millis: 40,
                        detail: Some("expected 200, got 500".into()),
                    },
                ],
                output: None,
                millis: 1500,
            }),
        }),
        Some("staging"),
    );
    let report = notify(&cfg, &src, &failed).await;
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let body = sink.requests()[0].json();
    let ts = body["timestamp"].as_str().unwrap();
    let secs: i64 = ts.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - secs).abs() < 60);
    assert_eq!(
        body["sign"].as_str().unwrap(),
        python_feishu_sign(ts, FEISHU_SECRET)
    );
    assert_eq!(body["msg_type"], "interactive");
    let card = &body["card"];
    assert_eq!(card["header"]["template"], "red");
    assert_eq!(
        card["header"]["title"]["content"],
        "❌ shop r42 · staging: tests failed"
    );
    let content = card["elements"][0]["text"]["content"].as_str().unwrap();
    assert_eq!(card["elements"][0]["text"]["tag"], "lark_md");
    for needle in [
        "GET /cart (40 ms): expected 200, got 500",
        // Tests that failed with a report are rolled back by Ferry: no rollback to suggest.
        "`ferry status shop`",
        "test 1.5 s",
    ] {
        assert!(
            content.contains(needle),
            "`{needle}` missing from:\n{content}"
        );
    }
    assert!(
        !content.contains("GET /healthz"),
        "passed checks are not listed"
    );
    assert_eq!(
        card["elements"][1]["text"]["content"],
        "<at id=ou_alice></at>"
    );

    // A refusal in Feishu's own words is a failure.
    let refusing = Sink::start(200, r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#).await;
    let cfg = config(&format!(
        "[notify.channels.lark]\nkind = \"feishu\"\nmsgtype = \"text\"\nurl = \"{}/open-apis/bot/v2/hook/x\"\n{}",
        refusing.url,
        route("lark")
    ));
    let report = notify(&cfg, &src, &build_failed(&src, "x")).await;
    assert!(report.permanent[0].1.contains("19021"), "{report:?}");
    assert_eq!(refusing.requests()[0].json()["msg_type"], "text");
}

#[tokio::test]
async fn slack_gets_text_and_blocks_with_the_member_mentioned() {
    let sink = Sink::start(200, "ok").await;
    let cfg = config(&format!(
        "[notify.channels.slack]\nkind = \"slack\"\nurl = \"{}/services/T000/B000/XXXXXXXXXXXXXXXX\"\n{}{}",
        sink.url,
        route("slack"),
        authors()
    ));
    let src = source();
    let report = notify(&cfg, &src, &build_failed(&src, "no Dockerfile")).await;
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let body = sink.requests()[0].json();
    assert_eq!(body["text"], "❌ shop r42: build failed <@U0ALICE>");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], "<@U0ALICE>");
    assert_eq!(blocks[1]["type"], "header");
    assert_eq!(blocks[1]["text"]["type"], "plain_text");
    assert_eq!(blocks[2]["type"], "section");
    assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
    let text = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(
        text.contains("*Revision*: r42") && text.contains("```\nno Dockerfile\n```"),
        "{text}"
    );
}

#[tokio::test]
async fn webhook_posts_the_summary_signed_with_hmac_sha256() {
    let sink = Sink::start(204, "").await;
    let cfg = config(&format!(
        "[notify.channels.hook]\nkind = \"webhook\"\nurl = \"{}/ferry\"\nsecret = \"whsec-0123456789\"\n{}",
        sink.url,
        route("hook"),
    ));
    let src = source();
    let failed = build_failed(&src, "no Dockerfile");
    let report = notify(&cfg, &src, &failed).await;
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let r = &sink.requests()[0];
    assert_eq!(
        r.header("x-ferry-signature").unwrap(),
        openssl_hmac_hex("whsec-0123456789", &r.body)
    );
    assert_eq!(r.header("x-ferry-event").unwrap(), "build.failed");
    assert_eq!(
        r.header("x-ferry-delivery").unwrap(),
        failed.event_id.to_string()
    );
    let body = r.json();
    assert_eq!(body["kind"], "build.failed");
    assert_eq!(body["outcome"], "bad");
    assert_eq!(body["project"], "shop");
    assert_eq!(body["run_id"], src.run_id.to_string());
    assert_eq!(body["revision"], "42");
    assert_eq!(body["author"], "alice");
    assert_eq!(body["message"], "Fix the checkout total");
    assert_eq!(body["reason"], "no Dockerfile");
    assert_eq!(
        body["commands"][0]["command"],
        format!("ferry logs {}", src.run_id)
    );
}

#[test]
fn internal_urls_are_refused_at_config_load_unless_allow_listed() {
    let err = try_config(
        "[notify.channels.x]\nkind = \"webhook\"\nurl = \"http://10.0.0.8/hook\"\n\
         [notify.channels.y]\nkind = \"slack\"\nurl = \"ftp://example.com/\"\n",
    )
    .unwrap_err();
    assert!(
        err.contains("notify.channels.x.url") && err.contains("private"),
        "{err}"
    );
    assert!(
        err.contains("notify.channels.y.url") && err.contains("http://"),
        "{err}"
    );
    assert!(
        try_config("[notify.channels.x]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n")
            .is_ok()
    );
}

#[test]
fn dingtalk_defaults_to_twenty_messages_a_minute() {
    let cfg = config(
        "[notify.channels.ding]\nkind = \"dingtalk\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=x\"\n",
    );
    let c = &cfg.notify.channels["ding"];
    let http = notifier::http::Http::new(std::time::Duration::from_secs(1), &[]).unwrap();
    let ch = notifier::channels::Channel::new("ding", c, &cfg.notify, &http).unwrap();
    assert_eq!(
        ch.rate_limit,
        Some(ferry_shared::notify_config::RateLimit {
            messages: 20,
            window_ms: 60_000
        })
    );
}

#[tokio::test]
async fn the_example_configuration_loads_and_builds_every_channel() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ferry.example.toml");
    let cfg = FerryConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.notify.channels.len(), 3);
    Notifier::new(&cfg).unwrap();
}

/// With `dashboard.url`, a message asking for an approval links the run's page, where
/// an operator approves or rejects it; without it, no link.
#[tokio::test]
async fn an_approval_request_links_the_run_s_page_on_the_dashboard() {
    let sink = Sink::start(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let channel = format!(
        "[notify.channels.ding]\nkind = \"dingtalk\"\nurl = \"{}/robot/send?access_token=tok-abcdef123456\"\nlanguage = \"zh-CN\"\n[[notify.routes]]\non = [\"approval.requested\"]\nchannels = [\"ding\"]\n",
        sink.url
    );
    let src = source();
    let mut asked = src.follow(
        Event::ApprovalRequested(ferry_shared::event::ApprovalRequested {
            revision: "42".into(),
            image: "127.0.0.1:5999/shop/web:42@sha256:abc".into(),
            passed_in: Some("staging".into()),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            canary_percent: None,
        }),
        Some("production"),
    );
    asked.environment = Some("production".into());
    let linked = config(&format!(
        "{channel}[dashboard]\nurl = \"https://ferry.example.com/ci/\"\n"
    ));
    let report = notify(&linked, &src, &asked).await;
    assert_eq!(report.sent, vec!["ding".to_owned()], "{report:?}");
    let plain = config(&channel);
    notify(&plain, &src, &asked).await;
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 2);
    let text = |i: usize| {
        reqs[i].json()["markdown"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let page = format!("https://ferry.example.com/ci/runs/{}", src.run_id);
    assert!(
        text(0).contains(&format!("[在 Ferry 中审批]({page})")),
        "no link to the run's page:\n{}",
        text(0)
    );
    assert!(
        !text(1).contains("https://"),
        "a link without dashboard.url:\n{}",
        text(1)
    );
}

//! A hostile commit (message, author, failure cause) reaches every chat platform's
//! simulator shown, not interpreted: no `@all`/`<!channel>`/`<at id=all>` mention, no
//! link, no image, no HTML tag.

use crate::sink::Sink;
use crate::*;
use ferry_shared::event::{Event, SourceChanged};
use notifier::Notifier;

pub const HOSTILE_MESSAGE: &str = "Fix total <!channel> <!here> <@U024BE7LH> @all @所有人 \
     <at id=all></at> <at user_id=\"all\">all</at> <@all> [click](https://evil.example/a) \
     ![px](https://evil.example/p.png) <https://evil.example|x> <font color=red>red</font>\n\
     [ref]: https://evil.example/ref";
pub const HOSTILE_AUTHOR: &str = "<!everyone> @everyone";

/// What must not reach a chat: each is a mention, a link, an image or a tag.
const FORBIDDEN: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U024BE7LH>",
    "<@all>",
    "@all",
    "@everyone",
    "@所有人",
    "<at id=all",
    "<at user_id=\"all\"",
    "](https://",
    "![px](",
    "<https://evil",
    "[ref]: ",
    "<font",
    "https://evil",
];

pub fn hostile_source() -> Envelope {
    Envelope::new_run(
        "shop",
        Event::SourceChanged(SourceChanged {
            source: "git".into(),
            repository: "https://example.com/shop.git".into(),
            reference: Some("refs/heads/<!channel>".into()),
            revision: "42".into(),
            author: Some(HOSTILE_AUTHOR.into()),
            message: Some(HOSTILE_MESSAGE.into()),
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

/// Every string in a JSON body, as a platform would render them.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_hostile_commit_arrives_neutralised_at_every_chat_platform() {
    // Answers every platform's success at once: `errcode` (DingTalk, WeCom), `code` (Feishu).
    let sink = Sink::start(200, r#"{"errcode":0,"code":0,"msg":"ok"}"#).await;
    let u = &sink.url;
    let channels = [
        (
            "ding-md",
            "dingtalk",
            "markdown",
            "/robot/send?access_token=t1",
        ),
        (
            "ding-text",
            "dingtalk",
            "text",
            "/robot/send?access_token=t2",
        ),
        ("wx-md", "wecom", "markdown", "/cgi-bin/webhook/send?key=k1"),
        ("wx-text", "wecom", "text", "/cgi-bin/webhook/send?key=k2"),
        (
            "lark-card",
            "feishu",
            "markdown",
            "/open-apis/bot/v2/hook/a",
        ),
        ("lark-text", "feishu", "text", "/open-apis/bot/v2/hook/b"),
        (
            "slack",
            "slack",
            "markdown",
            "/services/T0/B0/XXXXXXXXXXXXXXXX",
        ),
    ];
    let mut notify = String::new();
    for (name, kind, msgtype, path) in channels {
        notify.push_str(&format!(
            "[notify.channels.{name}]\nkind = \"{kind}\"\nurl = \"{u}{path}\"\n"
        ));
        if msgtype == "text" {
            notify.push_str("msgtype = \"text\"\n");
        }
    }
    let names: Vec<String> = channels.iter().map(|c| format!("\"{}\"", c.0)).collect();
    notify.push_str(&format!(
        "[[notify.routes]]\non = [\"failed\"]\nchannels = [{}]\n",
        names.join(", ")
    ));
    let cfg = config(&notify);
    let n = Notifier::new(&cfg).unwrap();
    let src = hostile_source();
    n.notify(&src).await;
    let cause = format!("step 3/5 RUN make failed:\n{HOSTILE_MESSAGE}");
    let report = n.notify(&build_failed(&src, &cause)).await;
    assert_eq!(report.sent.len(), channels.len(), "{report:?}");

    let requests = sink.requests();
    assert_eq!(requests.len(), channels.len());
    for r in &requests {
        let mut texts = Vec::new();
        strings(&r.json(), &mut texts);
        let all = texts.join("\n");
        assert!(
            all.contains("Fix total"),
            "{}: no commit message in {all}",
            r.path_and_query
        );
        for bad in FORBIDDEN {
            assert!(
                !all.contains(bad),
                "{}: `{bad}` reached the chat:\n{all}",
                r.path_and_query
            );
        }
    }
}

//! Feishu / Lark custom bot (自定义机器人): an `interactive` card or `text`, signed as
//! Feishu documents (`timestamp` in seconds and `sign` in the body) when a secret is
//! set. An answer with `code != 0` is a failure.

use super::{Platform, SendError, judge, pick, text_batch};
use crate::http::Http;
use crate::notice::{Notice, Tone};
use crate::render::{Dialect, batch_title, fit_bytes, markdown, title};
use ferry_shared::notify_config::AuthorConfig;
use ferry_shared::secret::Secret;
use serde_json::{Value, json};

/// Feishu takes request bodies up to 30 KB (20 KB for cards is the safe figure).
const MAX_BYTES: usize = 18_000;
/// "frequency limited".
const TOO_FAST: i64 = 11_232;

pub struct Feishu {
    pub http: Http,
    pub url: Secret<String>,
    pub secret: Option<Secret<String>>,
    pub text: bool,
}

pub fn fits(batch: &[&Notice]) -> bool {
    card(batch, &[]).to_string().len() <= MAX_BYTES
}

fn template(batch: &[&Notice]) -> &'static str {
    let tones: Vec<Tone> = batch.iter().map(|n| n.tone).collect();
    if tones.contains(&Tone::Bad) {
        "red"
    } else if tones.contains(&Tone::Attention) {
        "orange"
    } else if tones.iter().all(|t| *t == Tone::Good) {
        "green"
    } else {
        "blue"
    }
}

fn card(batch: &[&Notice], open_ids: &[String]) -> Value {
    let mut elements = Vec::new();
    for (i, n) in batch.iter().enumerate() {
        if i > 0 {
            elements.push(json!({ "tag": "hr" }));
        }
        let mut content = markdown(n, Dialect::Markdown, false);
        if batch.len() > 1 {
            content = format!("**{}**\n{content}", title(n));
        }
        elements.push(json!({ "tag": "div", "text": { "tag": "lark_md", "content": content } }));
    }
    if !open_ids.is_empty() {
        let at: Vec<String> = open_ids
            .iter()
            .map(|id| format!("<at id={id}></at>"))
            .collect();
        elements
            .push(json!({ "tag": "div", "text": { "tag": "lark_md", "content": at.join(" ") } }));
    }
    json!({
        "config": { "wide_screen_mode": true },
        "header": {
            "title": { "tag": "plain_text", "content": batch_title(batch) },
            "template": template(batch),
        },
        "elements": elements,
    })
}

impl Feishu {
    pub async fn send(
        &self,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        let lang = batch
            .first()
            .map(|n| n.lang)
            .unwrap_or(crate::i18n::Lang::En);
        let ids = pick(mentions, |a| a.feishu.as_ref());
        let mut body = if self.text {
            let at: Vec<String> = ids
                .iter()
                .map(|id| format!("<at user_id=\"{id}\"></at>"))
                .collect();
            let mut text = fit_bytes(&text_batch(batch), MAX_BYTES, lang);
            if !at.is_empty() {
                text = format!("{text}\n{}", at.join(" "));
            }
            json!({ "msg_type": "text", "content": { "text": text } })
        } else {
            let mut card = card(batch, &ids);
            if card.to_string().len() > MAX_BYTES {
                // One notice too long for a card: cut its text.
                let text = fit_bytes(
                    &markdown(batch[0], Dialect::Markdown, false),
                    MAX_BYTES - 2_000,
                    lang,
                );
                card["elements"][0]["text"]["content"] = Value::String(text);
            }
            json!({ "msg_type": "interactive", "card": card })
        };
        if let Some(secret) = &self.secret {
            let ts = chrono::Utc::now().timestamp();
            body["timestamp"] = Value::String(ts.to_string());
            body["sign"] = Value::String(crate::sign::feishu(ts, secret.expose()));
        }
        let reply = self
            .http
            .post_json(self.url.expose(), body.to_string().into_bytes(), &[])
            .await?;
        judge(
            &Platform {
                name: "Feishu",
                code_fields: &["code", "StatusCode"],
                too_fast: TOO_FAST,
                hint: "check the bot's signing secret, keywords and IP allow-list, and the machine's clock (signatures expire after an hour)",
            },
            &reply,
        )
    }
}

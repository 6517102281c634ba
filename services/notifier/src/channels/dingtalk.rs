//! DingTalk custom robot (自定义机器人): `markdown` or `text`, `at.atMobiles`, signed
//! URLs (`timestamp` + `sign`). An answer with `errcode != 0` is a failure.

use super::{Platform, SendError, judge, markdown_batch, pick, text_batch};
use crate::http::Http;
use crate::notice::Notice;
use crate::render::{Dialect, batch_title, fit_bytes};
use ferry_shared::notify_config::AuthorConfig;
use ferry_shared::secret::Secret;
use serde_json::json;

/// DingTalk's message limit is 20,000 bytes; stay below it.
const MAX_BYTES: usize = 18_000;
/// "Sending too fast" (over 20 a minute).
const TOO_FAST: i64 = 130_101;

pub struct DingTalk {
    pub http: Http,
    pub url: Secret<String>,
    pub secret: Option<Secret<String>>,
    pub text: bool,
}

pub fn fits(batch: &[&Notice]) -> bool {
    markdown_batch(batch, Dialect::Markdown).len() <= MAX_BYTES
}

impl DingTalk {
    pub async fn send(
        &self,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        let lang = batch
            .first()
            .map(|n| n.lang)
            .unwrap_or(crate::i18n::Lang::En);
        let mobiles = pick(mentions, |a| a.mobile.as_ref());
        // DingTalk highlights an @ only when `@<mobile>` also appears in the text.
        let at_line = mobiles
            .iter()
            .map(|m| format!("@{m}"))
            .collect::<Vec<_>>()
            .join(" ");
        let body = if self.text {
            let mut content = fit_bytes(&text_batch(batch), MAX_BYTES, lang);
            if !at_line.is_empty() {
                content = format!("{content}\n{at_line}");
            }
            json!({
                "msgtype": "text",
                "text": { "content": content },
                "at": { "atMobiles": mobiles, "isAtAll": false },
            })
        } else {
            let mut text = fit_bytes(&markdown_batch(batch, Dialect::Markdown), MAX_BYTES, lang);
            if !at_line.is_empty() {
                text = format!("{text}\n{at_line}");
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": batch_title(batch), "text": text },
                "at": { "atMobiles": mobiles, "isAtAll": false },
            })
        };
        let url = self.signed_url()?;
        let reply = self
            .http
            .post_json(&url, body.to_string().into_bytes(), &[])
            .await?;
        judge(
            &Platform {
                name: "DingTalk",
                code_fields: &["errcode"],
                too_fast: TOO_FAST,
                hint: "check the robot's security settings (signing secret, keywords, IP allow-list) and its URL",
            },
            &reply,
        )
    }

    /// The robot URL with `timestamp` (ms) and `sign` when a secret is set.
    fn signed_url(&self) -> Result<String, SendError> {
        let Some(secret) = &self.secret else {
            return Ok(self.url.expose().clone());
        };
        let mut url = reqwest::Url::parse(self.url.expose())
            .map_err(|e| SendError::Permanent(format!("the robot URL is not valid: {e}")))?;
        let ts = chrono::Utc::now().timestamp_millis();
        let sign = crate::sign::dingtalk(ts, secret.expose());
        url.query_pairs_mut()
            .append_pair("timestamp", &ts.to_string())
            .append_pair("sign", &sign);
        Ok(url.into())
    }
}

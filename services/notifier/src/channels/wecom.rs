//! WeCom (企业微信) group robot: `markdown` (mentions as `<@userid>`) or `text` with
//! `mentioned_list` / `mentioned_mobile_list`. An answer with `errcode != 0` is a failure.

use super::{Platform, SendError, judge, markdown_batch, pick, text_batch};
use crate::http::Http;
use crate::notice::Notice;
use crate::render::{Dialect, fit_bytes};
use ferry_shared::notify_config::AuthorConfig;
use ferry_shared::secret::Secret;
use serde_json::json;

/// WeCom's limits: markdown content 4096 bytes, text content 2048 bytes.
const MARKDOWN_BYTES: usize = 4_000;
const TEXT_BYTES: usize = 2_000;
/// "api freq out of limit".
const TOO_FAST: i64 = 45_009;

pub struct WeCom {
    pub http: Http,
    pub url: Secret<String>,
    pub text: bool,
}

impl WeCom {
    pub fn fits(&self, batch: &[&Notice]) -> bool {
        if self.text {
            text_batch(batch).len() <= TEXT_BYTES
        } else {
            markdown_batch(batch, Dialect::Markdown).len() <= MARKDOWN_BYTES
        }
    }

    pub async fn send(
        &self,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        let lang = batch
            .first()
            .map(|n| n.lang)
            .unwrap_or(crate::i18n::Lang::En);
        let ids = pick(mentions, |a| a.wecom.as_ref());
        let body = if self.text {
            json!({
                "msgtype": "text",
                "text": {
                    "content": fit_bytes(&text_batch(batch), TEXT_BYTES, lang),
                    "mentioned_list": ids,
                    "mentioned_mobile_list": pick(mentions, |a| a.mobile.as_ref()),
                },
            })
        } else {
            let at: String = ids
                .iter()
                .map(|id| format!("<@{id}>"))
                .collect::<Vec<_>>()
                .join(" ");
            let room = MARKDOWN_BYTES.saturating_sub(at.len() + 1);
            let mut content = fit_bytes(&markdown_batch(batch, Dialect::Markdown), room, lang);
            if !at.is_empty() {
                content = format!("{content}\n{at}");
            }
            json!({ "msgtype": "markdown", "markdown": { "content": content } })
        };
        let reply = self
            .http
            .post_json(self.url.expose(), body.to_string().into_bytes(), &[])
            .await?;
        judge(
            &Platform {
                name: "WeCom",
                code_fields: &["errcode"],
                too_fast: TOO_FAST,
                hint: "check the robot's key in its URL",
            },
            &reply,
        )
    }
}

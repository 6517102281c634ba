//! Slack incoming webhook: `text` (the fallback for notifications) plus `blocks`.
//! Slack answers `ok` (HTTP 200) or an HTTP error with a reason (`invalid_payload`,
//! `no_service`, ...); 429 carries `Retry-After`.

use super::{SendError, pick};
use crate::http::Http;
use crate::notice::{Notice, cut};
use crate::render::{Dialect, batch_title, markdown, title};
use ferry_shared::notify_config::AuthorConfig;
use ferry_shared::secret::Secret;
use serde_json::{Value, json};

/// Slack's limits: 50 blocks a message, 3000 characters a section, 150 a header.
const MAX_BLOCKS: usize = 50;
const BLOCKS_PER_NOTICE: usize = 3;
const SECTION_CHARS: usize = 2_900;

pub struct Slack {
    pub http: Http,
    pub url: Secret<String>,
}

pub fn fits(batch: &[&Notice]) -> bool {
    batch.len() * BLOCKS_PER_NOTICE < MAX_BLOCKS
}

fn blocks(batch: &[&Notice], members: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    if !members.is_empty() {
        let at: Vec<String> = members.iter().map(|m| format!("<@{m}>")).collect();
        out.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": at.join(" ") } }));
    }
    for (i, n) in batch.iter().enumerate() {
        if i > 0 {
            out.push(json!({ "type": "divider" }));
        }
        out.push(json!({
            "type": "header",
            "text": { "type": "plain_text", "text": cut(&title(n), 148), "emoji": true },
        }));
        out.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": cut(&markdown(n, Dialect::Slack, false), SECTION_CHARS) },
        }));
    }
    out
}

impl Slack {
    pub async fn send(
        &self,
        batch: &[&Notice],
        mentions: &[AuthorConfig],
    ) -> Result<(), SendError> {
        let members = pick(mentions, |a| a.slack.as_ref());
        let mut text = batch_title(batch);
        if !members.is_empty() {
            let at: Vec<String> = members.iter().map(|m| format!("<@{m}>")).collect();
            text = format!("{text} {}", at.join(" "));
        }
        let body = json!({ "text": text, "blocks": blocks(batch, &members) });
        self.http
            .post_json(self.url.expose(), body.to_string().into_bytes(), &[])
            .await?;
        Ok(())
    }
}

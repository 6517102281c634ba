//! Generic webhook: the run summary as JSON ([`crate::render::summary`]), with
//! `X-Ferry-Event`, `X-Ferry-Delivery` (the event id: stable across repeats, so a
//! receiver can drop duplicates) and, when a secret is set,
//! `X-Ferry-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use super::SendError;
use crate::http::Http;
use crate::notice::Notice;
use ferry_shared::secret::Secret;

pub struct Webhook {
    pub http: Http,
    pub url: Secret<String>,
    pub secret: Option<Secret<String>>,
}

impl Webhook {
    pub async fn send(&self, batch: &[&Notice]) -> Result<(), SendError> {
        // One event per request (`Channel::fits` never merges webhooks).
        for n in batch {
            let body = crate::render::summary(n).to_string().into_bytes();
            let mut headers = vec![
                ("X-Ferry-Event", n.kind.clone()),
                ("X-Ferry-Delivery", n.event_id.to_string()),
            ];
            if let Some(secret) = &self.secret {
                headers.push((
                    "X-Ferry-Signature",
                    crate::sign::webhook(secret.expose(), &body),
                ));
            }
            self.http
                .post_json(self.url.expose(), body, &headers)
                .await?;
        }
        Ok(())
    }
}

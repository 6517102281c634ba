//! Gitea: `X-Gitea-Event: push`, `X-Gitea-Signature` = hex HMAC-SHA256 of the raw body,
//! `X-Gitea-Delivery` for deduplication. The payload is GitHub-shaped.

use super::forge;
use crate::trigger::{Parsed, Rejection, Source, header, require_json};
use crate::verify::hmac_sha256_matches;
use axum::http::HeaderMap;
use ferry_shared::secret::Secret;

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    if let Some(secret) = secret {
        let sig = header(headers, "x-gitea-signature").ok_or_else(|| {
            Rejection::unauthorized(
                "missing X-Gitea-Signature header: set the webhook's secret in Gitea",
            )
        })?;
        if !hmac_sha256_matches(secret, body, sig) {
            return Err(Rejection::unauthorized(
                "X-Gitea-Signature does not match the body: check the webhook secret",
            ));
        }
    }
    let event = header(headers, "x-gitea-event")
        .ok_or_else(|| Rejection::bad_request("missing X-Gitea-Event header"))?;
    require_json(headers)?;
    match event {
        "push" => {
            let delivery = header(headers, "x-gitea-delivery").map(str::to_owned);
            Ok(forge::into_parsed(forge::parse_push(
                Source::Gitea,
                body,
                delivery,
            )?))
        }
        other => Ok(Parsed::ignored(format!(
            "`{other}` events do not start runs; send push events only"
        ))),
    }
}

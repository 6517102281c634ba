//! GitHub: `X-GitHub-Event: push` (and `ping`), `X-Hub-Signature-256: sha256=<hex>`
//! HMAC-SHA256 of the raw body, `X-GitHub-Delivery` for deduplication.

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
        let sig = header(headers, "x-hub-signature-256").ok_or_else(|| {
            Rejection::unauthorized(
                "missing X-Hub-Signature-256 header: set the webhook's secret in GitHub",
            )
        })?;
        let hex = sig
            .strip_prefix("sha256=")
            .ok_or_else(|| Rejection::unauthorized("X-Hub-Signature-256 must be `sha256=<hex>`"))?;
        if !hmac_sha256_matches(secret, body, hex) {
            return Err(Rejection::unauthorized(
                "X-Hub-Signature-256 does not match the body: check the webhook secret",
            ));
        }
    }
    let event = header(headers, "x-github-event")
        .ok_or_else(|| Rejection::bad_request("missing X-GitHub-Event header"))?;
    require_json(headers)?;
    match event {
        "push" => {
            let delivery = header(headers, "x-github-delivery").map(str::to_owned);
            Ok(forge::into_parsed(forge::parse_push(
                Source::Github,
                body,
                delivery,
            )?))
        }
        "ping" => Ok(Parsed::ignored("ping received: the webhook works")),
        other => Ok(Parsed::ignored(format!(
            "`{other}` events do not start runs; send `push` events only"
        ))),
    }
}

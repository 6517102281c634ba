//! Gitea: `X-Gitea-Event: push`, `X-Gitea-Signature` = hex HMAC-SHA256 of the raw body
//! (no prefix), `X-Gitea-Delivery` for deduplication. The payload is GitHub-shaped.

use super::forge::{SignedForge, parse_signed};
use crate::trigger::{Parsed, Rejection, Source};
use ferry_shared::secret::Secret;
use http::HeaderMap;

pub const GITEA: SignedForge = SignedForge {
    source: Source::Gitea,
    name: "Gitea",
    signature_header: "X-Gitea-Signature",
    signature_prefix: "",
    event_header: "X-Gitea-Event",
    delivery_header: "X-Gitea-Delivery",
};

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    parse_signed(&GITEA, headers, body, secret)
}

//! GitHub: `X-GitHub-Event: push` (and `ping`), `X-Hub-Signature-256: sha256=<hex>`
//! HMAC-SHA256 of the raw body, `X-GitHub-Delivery` for deduplication.

use super::forge::{SignedForge, parse_signed};
use crate::trigger::{Parsed, Rejection, Source};
use ferry_shared::secret::Secret;
use http::HeaderMap;

pub const GITHUB: SignedForge = SignedForge {
    source: Source::Github,
    name: "GitHub",
    signature_header: "X-Hub-Signature-256",
    signature_prefix: "sha256=",
    event_header: "X-GitHub-Event",
    delivery_header: "X-GitHub-Delivery",
};

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    parse_signed(&GITHUB, headers, body, secret)
}

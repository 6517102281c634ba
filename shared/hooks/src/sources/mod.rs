//! One parser per source: raw headers and body in, a [`Parsed`] trigger or a
//! [`Rejection`] out. Pure functions (no I/O), shared by the HTTP endpoint,
//! `ferry hook inspect` and the fuzz targets. Authentication is checked first, on
//! the raw bytes, before any parsing.

pub mod forge;
pub mod git;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod harbor;
pub mod manual;
pub mod svn;

use crate::trigger::{Parsed, Rejection, Source};
use ferry_shared::secret::Secret;
use http::HeaderMap;

/// Parse one request from `source`. `secret` is what the sender must prove it knows;
/// `None` skips the check (only `ferry hook inspect` does that, when given no secret).
pub fn parse(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    match source {
        Source::Gitlab => gitlab::parse(headers, body, secret),
        Source::Github => github::parse(headers, body, secret),
        Source::Gitea => gitea::parse(headers, body, secret),
        Source::Git => git::parse(headers, body, secret),
        Source::Svn => svn::parse(headers, body, secret),
        Source::Harbor => harbor::parse(headers, body, secret),
        Source::Manual => manual::parse(headers, body, secret),
    }
}

/// `Authorization: Bearer <token>` checked against the secret.
pub(crate) fn check_bearer(
    headers: &HeaderMap,
    secret: Option<&Secret<String>>,
) -> Result<(), Rejection> {
    let Some(secret) = secret else { return Ok(()) };
    let given =
        crate::trigger::header(headers, "authorization").and_then(|h| h.strip_prefix("Bearer "));
    match given {
        None => Err(Rejection::unauthorized(
            "missing `Authorization: Bearer <token>` header",
        )),
        Some(token) if crate::verify::token_matches(secret, Some(token.trim())) => Ok(()),
        Some(_) => Err(Rejection::unauthorized("wrong token")),
    }
}

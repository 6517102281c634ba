//! What can be refused from the headers alone, before a byte of the body is read: a
//! missing or wrong token (GitLab, SVN, Harbor, manual: their proof is a header), a
//! missing or malformed signature (GitHub, Gitea sign the body, so the signature
//! itself is checked after reading it), and an over-long delivery id. A client that
//! cannot authenticate therefore cannot make the receiver wait for, or hold, a body.
//! The source parsers check the same again on their own (they also serve
//! `ferry hook inspect` and the fuzz targets).

use crate::sources::{check_bearer, forge::SignedForge, gitea, github, gitlab, harbor};
use crate::trigger::{Rejection, Source, header};
use ferry_shared::secret::Secret;
use http::HeaderMap;

/// Longest delivery id accepted (GitHub's and Gitea's are UUIDs, GitLab's too).
pub const MAX_DELIVERY_ID_BYTES: usize = 200;

pub fn check(
    source: Source,
    headers: &HeaderMap,
    secret: &Secret<String>,
) -> Result<(), Rejection> {
    match source {
        Source::Manual | Source::Svn | Source::Git => check_bearer(headers, Some(secret))?,
        Source::Gitlab => gitlab::check_token(headers, secret)?,
        Source::Harbor => harbor::check_auth(headers, secret)?,
        Source::Github => signature_present(&github::GITHUB, headers)?,
        Source::Gitea => signature_present(&gitea::GITEA, headers)?,
    }
    delivery_ids(source, headers)
}

/// A signature header of the right form: the prefix, then 64 hex digits.
fn signature_present(forge: &SignedForge, headers: &HeaderMap) -> Result<(), Rejection> {
    let name = forge.signature_header;
    let sig = header(headers, name).ok_or_else(|| {
        Rejection::unauthorized(format!(
            "missing {name} header: set the webhook's secret in {}",
            forge.name
        ))
    })?;
    let hex = sig.strip_prefix(forge.signature_prefix).ok_or_else(|| {
        Rejection::unauthorized(format!("{name} must be `{}<hex>`", forge.signature_prefix))
    })?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Rejection::unauthorized(format!(
            "{name} must be `{}` and 64 hex digits (HMAC-SHA256)",
            forge.signature_prefix
        )));
    }
    Ok(())
}

fn delivery_ids(source: Source, headers: &HeaderMap) -> Result<(), Rejection> {
    let names: &[&str] = match source {
        Source::Github => &[github::GITHUB.delivery_header],
        Source::Gitea => &[gitea::GITEA.delivery_header],
        Source::Gitlab => &["idempotency-key", "x-gitlab-event-uuid"],
        Source::Svn | Source::Git | Source::Harbor | Source::Manual => &[],
    };
    for name in names {
        if headers
            .get_all(*name)
            .iter()
            .any(|v| v.len() > MAX_DELIVERY_ID_BYTES)
        {
            return Err(Rejection::bad_request(format!(
                "{name} is longer than {MAX_DELIVERY_ID_BYTES} bytes: not a delivery id"
            )));
        }
    }
    Ok(())
}

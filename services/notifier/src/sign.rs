//! The platforms' request signatures, exactly as they document them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// DingTalk: `base64(HMAC-SHA256(key = secret, message = "{timestamp_ms}\n{secret}"))`
/// (the caller URL-encodes it into the `sign` query parameter).
pub fn dingtalk(timestamp_ms: i64, secret: &str) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    STANDARD.encode(hmac_sha256(secret.as_bytes(), to_sign.as_bytes()))
}

/// Feishu/Lark: `base64(HMAC-SHA256(key = "{timestamp_s}\n{secret}", message = ""))`.
pub fn feishu(timestamp_s: i64, secret: &str) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// Generic webhook: `sha256=<hex HMAC-SHA256(key = secret, message = body)>`.
pub fn webhook(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

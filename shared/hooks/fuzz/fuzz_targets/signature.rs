#![no_main]
//! The signature and token checks: arbitrary secrets, bodies and claimed signatures
//! never panic, and a signature computed for the body always verifies.

use ferry_shared::secret::Secret;
use ferry_hooks::verify::{hmac_sha256_hex, hmac_sha256_matches, token_matches};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (key, claimed, body) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let secret = Secret::new(key.to_owned());
    let _ = hmac_sha256_matches(&secret, body.as_bytes(), claimed);
    let _ = token_matches(&secret, Some(claimed));
    let right = hmac_sha256_hex(key, body.as_bytes());
    assert!(hmac_sha256_matches(&secret, body.as_bytes(), &right));
    assert!(token_matches(&secret, Some(key)));
});

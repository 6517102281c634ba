//! Checking who sent a hook, in constant time, before anything else is read.

use ferry_shared::secret::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `given` equals the secret. Both sides are hashed first so the comparison
/// takes the same time whatever their lengths.
pub fn token_matches(secret: &Secret<String>, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let a = Sha256::digest(secret.expose().as_bytes());
    let b = Sha256::digest(given.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// Whether `given_hex` is the hex HMAC-SHA256 of `body` under the secret.
pub fn hmac_sha256_matches(secret: &Secret<String>, body: &[u8], given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The hex HMAC-SHA256 of `body` (for tests and `ferry hook inspect`).
pub fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector ("Validating webhook deliveries").
    #[test]
    fn githubs_signature_test_vector() {
        let secret = Secret::new("It's a Secret to Everybody".to_owned());
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(hmac_sha256_hex(secret.expose(), b"Hello, World!"), expected);
        assert!(hmac_sha256_matches(&secret, b"Hello, World!", expected));
        assert!(!hmac_sha256_matches(&secret, b"Hello, World?", expected));
        assert!(!hmac_sha256_matches(&secret, b"Hello, World!", "zz"));
    }

    #[test]
    fn tokens_must_match_exactly() {
        let s = Secret::new("gitlab-secret-token".to_owned());
        assert!(token_matches(&s, Some("gitlab-secret-token")));
        assert!(!token_matches(&s, Some("gitlab-secret-toke")));
        assert!(!token_matches(&s, Some("")));
        assert!(!token_matches(&s, None));
    }
}

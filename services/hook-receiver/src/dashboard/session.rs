//! Sign-in for the dashboard: an operator's token, once, then a signed session cookie.
//!
//! The cookie holds the operator's name, a fingerprint of their token, when it
//! expires and a nonce, signed with HMAC-SHA256 under `dashboard.session_secret`.
//! Nothing is stored server-side, so every replica with the same secret accepts it.
//! Each request looks the operator up again by name and compares the fingerprint:
//! removing or changing an operator's token signs their sessions out at once.
//! Every form carries a CSRF token derived from the session (HMAC of the cookie):
//! a page of another site can neither read it nor, with `SameSite=Strict`, send the
//! cookie in the first place.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ferry_shared::config::operators::{Access, OperatorKeys};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const COOKIE: &str = "ferry_session";

/// Signs and checks session cookies.
pub struct Sessions {
    /// None when no secret is set and the system gave no randomness: then nobody can
    /// sign in (a fixed fallback key would let anyone forge a session).
    key: Option<[u8; 32]>,
    lifetime: Duration,
}

/// A signed-in operator.
#[derive(Clone)]
pub struct Session {
    pub access: Arc<Access>,
    /// The cookie's value, for deriving the CSRF token.
    cookie: String,
    pub expires: u64,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sessions {
    /// With the configured secret, or (none set) a key of this process's own.
    pub fn new(secret: Option<&str>, lifetime: Duration) -> Self {
        let key = match secret {
            // Any length of secret becomes a 32-byte key.
            Some(s) => Some(<Sha256 as sha2::Digest>::digest(s.trim().as_bytes()).into()),
            None => {
                let mut key = [0u8; 32];
                match getrandom::fill(&mut key) {
                    Ok(()) => Some(key),
                    Err(e) => {
                        tracing::error!(
                            "no random session key ({e}): nobody can sign in to the dashboard until dashboard.session_secret is set"
                        );
                        None
                    }
                }
            }
        };
        Self { key, lifetime }
    }

    /// The keyed MAC of `purpose` and `data` (none without a key).
    fn keyed(&self, purpose: &str, data: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref()?).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        Some(mac)
    }

    fn mac(&self, purpose: &str, data: &str) -> Option<[u8; 32]> {
        Some(self.keyed(purpose, data)?.finalize().into_bytes().into())
    }

    /// A new session cookie value for `access`, whose token has `fingerprint` (none
    /// without a key).
    pub fn issue(&self, access: &Access, fingerprint: &str) -> Option<String> {
        let mut nonce = [0u8; 12];
        let _ = getrandom::fill(&mut nonce);
        let expires = now_s() + self.lifetime.as_secs();
        let payload = format!(
            "{}|{fingerprint}|{expires}|{}",
            B64.encode(access.name.as_bytes()),
            B64.encode(nonce)
        );
        let sig = B64.encode(self.mac("session", &payload)?);
        Some(format!("{payload}|{sig}"))
    }

    /// The session a cookie value proves, if it is genuine, unexpired and its
    /// operator still has the token it was issued for.
    pub fn check(&self, cookie: &str, operators: &OperatorKeys) -> Option<Session> {
        let (payload, sig) = cookie.rsplit_once('|')?;
        let sig = B64.decode(sig).ok()?;
        self.keyed("session", payload)?.verify_slice(&sig).ok()?;
        let mut parts = payload.split('|');
        let name = String::from_utf8(B64.decode(parts.next()?).ok()?).ok()?;
        let fingerprint = parts.next()?;
        let expires: u64 = parts.next()?.parse().ok()?;
        if expires <= now_s() {
            return None;
        }
        let (current, access) = operators.by_name(&name)?;
        (current == fingerprint).then(|| Session {
            access,
            cookie: cookie.to_owned(),
            expires,
        })
    }

    /// The CSRF token of a session: what its forms must send back.
    pub fn csrf(&self, session: &Session) -> String {
        // A session exists only where there is a key.
        self.mac("csrf", &session.cookie)
            .map(|m| B64.encode(&m[..18]))
            .unwrap_or_default()
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, session: &Session, token: &str) -> bool {
        let Ok(given) = B64.decode(token.trim()) else {
            return false;
        };
        given.len() == 18
            && self
                .keyed("csrf", &session.cookie)
                .is_some_and(|mac| mac.verify_truncated_left(&given).is_ok())
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::config::OperatorConfig;
    use std::collections::BTreeMap;

    fn operators(token: &str) -> OperatorKeys {
        let cfg: OperatorConfig =
            serde_json::from_value(serde_json::json!({ "token": token, "can": ["view"] })).unwrap();
        OperatorKeys::new(&BTreeMap::from([("alice".to_owned(), cfg)]))
    }

    fn signed_in(sessions: &Sessions, keys: &OperatorKeys, token: &str) -> String {
        let access = keys.find(token).unwrap();
        let (fp, _) = keys.by_name(&access.name).unwrap();
        sessions.issue(&access, &fp).unwrap()
    }

    #[test]
    fn a_genuine_cookie_signs_in_and_a_tampered_one_does_not() {
        let keys = operators("t0ken-of-alice-0123456789");
        let sessions = Sessions::new(Some(&"s".repeat(40)), Duration::from_secs(60));
        let cookie = signed_in(&sessions, &keys, "t0ken-of-alice-0123456789");
        let s = sessions
            .check(&cookie, &keys)
            .expect("genuine cookie refused");
        assert_eq!(s.access.name, "alice");
        let csrf = sessions.csrf(&s);
        assert!(sessions.csrf_ok(&s, &csrf));
        assert!(!sessions.csrf_ok(&s, "AAAAAAAAAAAAAAAAAAAAAAAA"));
        // Another name under the same signature.
        let forged = cookie.replacen(&B64.encode("alice"), &B64.encode("admin"), 1);
        assert!(sessions.check(&forged, &keys).is_none());
        // Another key (another install, or a rotated secret).
        let other = Sessions::new(Some(&"x".repeat(40)), Duration::from_secs(60));
        assert!(other.check(&cookie, &keys).is_none());
    }

    #[test]
    fn a_changed_token_or_an_expired_cookie_signs_out() {
        let keys = operators("t0ken-of-alice-0123456789");
        let sessions = Sessions::new(Some(&"s".repeat(40)), Duration::from_secs(60));
        let cookie = signed_in(&sessions, &keys, "t0ken-of-alice-0123456789");
        let rotated = operators("n3w-token-of-alice-987654321");
        assert!(sessions.check(&cookie, &rotated).is_none());
        let expired = Sessions::new(Some(&"s".repeat(40)), Duration::ZERO);
        let cookie = signed_in(&expired, &keys, "t0ken-of-alice-0123456789");
        assert!(expired.check(&cookie, &keys).is_none());
    }
}

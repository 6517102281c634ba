//! Which settings of a secret file are secrets. A production `.env` holds credentials
//! next to ordinary settings (`APP_ENV=production`, `DB_PORT=3306`): blanking the
//! settings out of logs and messages would mangle ordinary words without protecting
//! anything, and missing a credential would leak it. A value is a secret when
//!
//! 1. its key is in the project's `secret_keys` (and not when in `plain_keys`);
//! 2. its key names a secret (`DB_PASSWORD`, `APP_SECRET`, `API_KEY`, `AUTH_TOKEN`,
//!    `SENTRY_DSN`, `private_key`, `credentials`), unless the value is an ordinary word
//!    (`true`, `null`, a port number);
//! 3. it is a URL with a password (`mysql://shop:pw@db/shop`): the URL and the password;
//! 4. it is key material (`-----BEGIN … PRIVATE KEY-----`);
//! 5. it looks random: 16 characters or more of a token's alphabet, letters and digits
//!    mixed, with the entropy of a generated string (`K=9fQ2xL7pZ3vR8tY1`), whatever
//!    its key.
//!
//! Values shorter than [`super::MIN_SECRET_LEN`] are never scrubbed.

use std::sync::LazyLock;

/// Words that name a secret wherever they stand in a key (`DB_PASSWORD_FILE` too).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "credential",
    "creds",
    "dsn",
    "private",
    "privkey",
    "apikey",
];

/// Words that name a secret as the last word of a key (`API_KEY`, `AUTH_TOKEN`,
/// `BASIC_AUTH`), not before another word (`CACHE_KEY_PREFIX`, `TOKEN_TTL`).
const SECRET_LAST_WORDS: &[&str] = &["key", "token", "auth", "pass", "pw", "salt", "cookie"];

/// A key pattern from `secret_keys` / `plain_keys`: a key, case-insensitive, where `*`
/// stands for any text (`STRIPE_*`, `*_WEBHOOK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern(String);

impl KeyPattern {
    /// `None` unless the pattern is a key name (letters, digits, `_ . -`) with `*`s.
    pub fn parse(s: &str) -> Option<KeyPattern> {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-*".contains(c))
            && s.chars().any(|c| c != '*');
        ok.then(|| KeyPattern(s.to_ascii_lowercase()))
    }

    pub fn matches(&self, key: &str) -> bool {
        glob(&self.0, &key.to_ascii_lowercase())
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else {
                return false;
            };
            (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .any(|i| glob(rest, &text[i..]))
        }
    }
}

/// A project's additions to the rule: keys whose values are secrets whatever they
/// look like, and keys whose values never are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRules {
    pub secret: Vec<KeyPattern>,
    pub plain: Vec<KeyPattern>,
}

/// The secrets in the setting `key = value` (the value, and for a URL its password).
pub fn secrets_in(key: &str, value: &str, rules: &KeyRules) -> Vec<String> {
    let value = value.trim();
    if value.len() < super::MIN_SECRET_LEN || rules.plain.iter().any(|p| p.matches(key)) {
        return Vec::new();
    }
    if rules.secret.iter().any(|p| p.matches(key)) {
        return vec![value.to_owned()];
    }
    if ordinary(value) {
        return Vec::new();
    }
    if key_names_a_secret(key) || is_key_material(value) {
        return vec![value.to_owned()];
    }
    let mut out = url_credentials(value);
    if !out.is_empty() {
        out.insert(0, value.to_owned());
    } else if looks_random(value) {
        out.push(value.to_owned());
    }
    out.retain(|s| s.len() >= super::MIN_SECRET_LEN);
    out.dedup();
    out
}

/// Values a secret file holds next to its secrets that no one would call a secret.
fn ordinary(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "null", "none", "nil", "yes", "no", "on", "off", "empty",
    ];
    WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
        || (v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The words of a key: split at anything but letters and digits and at camelCase
/// humps, lower-cased, a plural `s` dropped (`DB_PASSWORDS`, `apiKeys`).
fn words(key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|w| match w.strip_suffix('s') {
            Some(one) if SECRET_WORDS.contains(&one) || SECRET_LAST_WORDS.contains(&one) => {
                one.to_owned()
            }
            _ => w,
        })
        .collect()
}

pub fn key_names_a_secret(key: &str) -> bool {
    let words = words(key);
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || words
            .last()
            .is_some_and(|w| SECRET_LAST_WORDS.contains(&w.as_str()))
}

fn is_key_material(v: &str) -> bool {
    v.contains("-----BEGIN") && (v.contains("PRIVATE KEY") || v.contains("ENCRYPTED"))
}

/// The passwords in URLs within `v` (`scheme://user:password@host`), and a user part
/// that looks like a token (`https://ghp_…@github.com`).
fn url_credentials(v: &str) -> Vec<String> {
    static USERINFO: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://([^:/?#@\s]*)(?::([^/?#@\s]*))?@")
            .expect("a valid pattern")
    });
    let mut out = Vec::new();
    for c in USERINFO.captures_iter(v) {
        if let Some(pw) = c.get(2).filter(|p| !p.as_str().is_empty()) {
            out.push(pw.as_str().to_owned());
            out.push(percent_decoded(pw.as_str()));
        } else if let Some(user) = c.get(1).filter(|u| looks_random(u.as_str())) {
            out.push(user.as_str().to_owned());
        }
    }
    out.dedup();
    out
}

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A generated string rather than a setting: long enough, one word of a token's
/// alphabet (no spaces, no `:` of a URL or time), letters and digits mixed, and close
/// to the entropy a random string of its length and alphabet has. Host names, paths and
/// locale names are one case of letters with few digits, and fall short.
pub fn looks_random(v: &str) -> bool {
    const MIN_LEN: usize = 16;
    let token_alphabet = |c: char| c.is_ascii_alphanumeric() || "+/=_-.~".contains(c);
    if v.len() < MIN_LEN || !v.chars().all(token_alphabet) {
        return false;
    }
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let letters = v.bytes().filter(u8::is_ascii_alphabetic).count();
    let upper = v.bytes().any(|b| b.is_ascii_uppercase());
    let lower = v.bytes().any(|b| b.is_ascii_lowercase());
    // Mixed case, or at least a few digits among the letters (hex, lower-case tokens).
    if letters == 0 || !((upper && lower) || digits >= 3) {
        return false;
    }
    let hex = v.bytes().all(|b| b.is_ascii_hexdigit());
    let alphabet: f64 = if hex { 16.0 } else { 64.0 };
    let best = (v.len() as f64).min(alphabet).log2();
    entropy(v) >= 0.8 * best
}

/// Shannon entropy of the characters of `v`, in bits per character.
fn entropy(v: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in v.bytes() {
        counts[b as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &str, value: &str) -> bool {
        !secrets_in(key, value, &KeyRules::default()).is_empty()
    }

    /// Settings from real `.env` and `parameters.yml` files: none is a secret.
    #[test]
    fn settings_that_look_like_words_are_not_secrets() {
        let settings = [
            ("APP_ENV", "production"),
            ("APP_DEBUG", "false"),
            ("DB_HOST", "127.0.0.1"),
            ("DB_PORT", "3306"),
            ("DB_CHARSET", "utf8mb4"),
            ("DB_COLLATION", "utf8mb4_unicode_ci"),
            ("DB_USER", "shop_rw"),
            ("DB_HOST", "db.internal"),
            ("APP_URL", "https://shop.example.com"),
            ("REDIS_URL", "redis://cache:6379/0"),
            ("MAIL_HOST", "smtp.mailgun.org"),
            ("MAIL_FROM", "noreply@shop.example.com"),
            ("CACHE_HOST", "redis-cluster-01.internal"),
            ("APP_TIMEZONE", "Asia/Shanghai"),
            ("APP_LOCALE", "zh_CN.UTF-8"),
            ("STORAGE_PATH", "/var/www/html/storage/app"),
            ("LOG_CHANNEL", "stack"),
            ("CACHE_KEY_PREFIX", "shop_cache_"),
            ("TOKEN_TTL", "3600"),
            ("SESSION_LIFETIME", "120"),
            ("APP_NAME", "Ferry Shop"),
            ("MEMORY_LIMIT", "1024M"),
            ("RELEASED_AT", "2026-12-02T12:00:00Z"),
            ("AWS_DEFAULT_REGION", "cn-north-1"),
            ("QUEUE_CONNECTION", "database"),
            ("MYSQL_ATTR_SSL_CA", "/etc/ssl/certs/ca-certificates.crt"),
            ("DB_PASSWORD", "null"),
        ];
        for (k, v) in settings {
            assert!(!secret(k, v), "{k}={v} was taken for a secret");
        }
    }

    #[test]
    fn keys_that_name_a_secret_make_their_values_secrets() {
        for key in [
            "DB_PASSWORD",
            "db_passwd",
            "APP_SECRET",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
            "apiKey",
            "STRIPE_KEYS",
            "AUTH_TOKEN",
            "githubToken",
            "BASIC_AUTH",
            "SENTRY_DSN",
            "JWT_PRIVATE_KEY_PATH",
            "GOOGLE_CREDENTIALS",
            "SMTP_PASS",
            "PASSWORD_SALT",
        ] {
            assert!(secret(key, "root"), "{key}");
        }
        for key in [
            "KEYBOARD",
            "PASSENGER_COUNT",
            "TOKENIZER",
            "AUTHOR",
            "DSN_TIMEOUT_X",
        ] {
            let named = key_names_a_secret(key);
            assert_eq!(named, key == "DSN_TIMEOUT_X", "{key}");
        }
    }

    #[test]
    fn short_keyed_but_real_secrets_are_found_by_their_look() {
        for (k, v) in [
            ("K", "9fQ2xL7pZ3vR8tY1mW4s"),
            ("X", "3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d"),
            ("STRIPE", "sk_live_51H8xQ2eZvKYlo2C0aQ9b8R7t"),
            ("SIG", "c2VjcmV0LXRva2VuLXZhbHVlLTEyMw=="),
            (
                "ID_RSA",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE",
            ),
        ] {
            assert!(secret(k, v), "{k}={v} was not taken for a secret");
        }
    }

    #[test]
    fn a_password_inside_a_url_is_a_secret_and_so_is_the_url() {
        let found = secrets_in(
            "DATABASE_URL",
            "mysql://shop:S3cr%40t-pw@db:3306/shop",
            &KeyRules::default(),
        );
        assert_eq!(
            found,
            [
                "mysql://shop:S3cr%40t-pw@db:3306/shop",
                "S3cr%40t-pw",
                "S3cr@t-pw"
            ]
        );
        assert!(!secret("DATABASE_URL", "mysql://db:3306/shop"));
        assert!(!secret("MAIL_FROM", "ops@example.com"));
    }

    #[test]
    fn the_projects_lists_add_and_exempt_keys() {
        let rules = KeyRules {
            secret: vec![KeyPattern::parse("LICENSE_*").unwrap()],
            plain: vec![KeyPattern::parse("public_key").unwrap()],
        };
        assert_eq!(secrets_in("LICENSE_ID", "shop", &rules), ["shop"]);
        assert!(secrets_in("PUBLIC_KEY", "pk_live_51H8xQ2eZvKYlo2C0aQ9b8R7t", &rules).is_empty());
        assert!(secrets_in("LICENSE_ID", "abc", &rules).is_empty());
        assert!(KeyPattern::parse("*").is_none());
        assert!(KeyPattern::parse("A B").is_none());
        assert!(
            KeyPattern::parse("*_TOKEN")
                .unwrap()
                .matches("github_token")
        );
    }
}

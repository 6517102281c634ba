//! Keeping secrets out of what Ferry writes down: build logs, test reports, events,
//! notifications. Every secret value is replaced by `[redacted]`, and so are its
//! encoded forms (base64 and base64url in a Basic auth header or a token, URL-encoding
//! in a DSN or query string, hex in a dump, JSON escaping in a debug page quoting the
//! environment), which a plain search would miss. Which values of a config repo's secret
//! files are secrets is decided by [`rule`].

mod files;
mod rule;

pub use files::secret_file_values;
pub use rule::{KeyPattern, KeyRules, looks_random};

use crate::secret::REDACTED;
use base64::Engine;

/// A secret shorter than this is not scrubbed (it would blank out ordinary words);
/// config validation asks for longer ones.
pub const MIN_SECRET_LEN: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    /// Every form of every secret, longest first, so a secret containing another is
    /// replaced whole.
    needles: Vec<String>,
}

impl Scrubber {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut needles = Vec::new();
        for s in secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            needles.extend(encoded_forms(&s));
            needles.push(s);
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self { needles }
    }

    /// The same scrubber knowing `more` secrets too.
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Self {
        let mut all = self.clone();
        all.needles.extend(Self::new(more).needles);
        all.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.needles.dedup();
        all
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `text` holds any form of a secret.
    pub fn finds(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Every form in which `secret` may appear in text Ferry records, besides itself.
fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut forms = base64_forms(secret, &STANDARD);
    forms.extend(base64_forms(secret, &URL_SAFE));
    forms.push(url_encoded(secret));
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    forms.push(hex.to_uppercase());
    forms.push(hex);
    // JSON strings: `"` and `\` escaped; `/` too by PHP's json_encode, `<>&` as
    // `\u003c` by Go's encoding/json.
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    let json = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned();
    forms.push(json.replace('/', "\\/"));
    forms.push(
        json.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    );
    forms.push(json);
    forms.retain(|f| f != secret && f.len() >= MIN_SECRET_LEN);
    forms
}

/// The base64 text a secret becomes inside a longer encoded string (`user:secret` in a
/// Basic auth header): one per alignment of its first byte in the 3-byte groups, only
/// the characters that the secret's own bits decide.
fn base64_forms(secret: &str, engine: &impl Engine) -> Vec<String> {
    (0..3usize)
        .map(|k| {
            let mut bytes = vec![0u8; k];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            let start = (k * 8).div_ceil(6);
            let end = bytes.len() * 8 / 6;
            encoded[start..end].to_owned()
        })
        .collect()
}

/// Percent-encoding of everything but RFC 3986's unreserved characters, as URL query
/// encoders (and `encodeURIComponent`) write it.
fn url_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_longest_first() {
        let s = Scrubber::new(["hunter2".into(), "hunter2-prod".into(), "ab".into()]);
        assert_eq!(
            s.text("pw=hunter2-prod and hunter2, ab stays"),
            "pw=[redacted] and [redacted], ab stays"
        );
    }

    /// Expected encodings from Python (`base64.b64encode`, `urllib.parse.quote(s, safe="")`).
    #[test]
    fn encoded_forms_are_replaced_too() {
        let s = Scrubber::new(["p@ss w/rd!".to_owned()]);
        assert_eq!(
            s.text("Authorization: Basic cEBzcyB3L3JkIQ=="),
            "Authorization: Basic [redacted]Q=="
        );
        // `ops:` and `ops1:` put the secret at the two other alignments.
        assert_eq!(
            s.text("Basic b3BzOnBAc3Mgdy9yZCE="),
            "Basic b3BzOn[redacted]E="
        );
        assert_eq!(
            s.text("Basic b3BzMTpwQHNzIHcvcmQh"),
            "Basic b3BzMTp[redacted]"
        );
        assert_eq!(
            s.text("?password=p%40ss%20w%2Frd%21&x=1"),
            "?password=[redacted]&x=1"
        );
        assert!(!s.finds("nothing here"));
    }

    /// Expected encodings from Python (`s.encode().hex()`, `base64.urlsafe_b64encode`,
    /// `json.dumps`, PHP's `json_encode` escaping `/`).
    #[test]
    fn hex_base64url_and_json_escaped_forms_are_replaced() {
        let s = Scrubber::new([r#"k/y\"q>?~~~"#.to_owned()]);
        assert_eq!(
            s.text("dump 6b2f795c22713e3f7e7e7e end"),
            "dump [redacted] end"
        );
        assert_eq!(s.text("DUMP 6B2F795C22713E3F7E7E7E"), "DUMP [redacted]");
        // base64.urlsafe_b64encode(rb'k/y\"q>?~~~') = b'ay95XCJxPj9-fn4='
        assert_eq!(s.text("token ay95XCJxPj9-fn4="), "token [redacted]4=");
        assert_eq!(
            s.text(r#"{"pw":"k/y\\\"q>?~~~"}"#),
            r#"{"pw":"[redacted]"}"#
        );
        assert_eq!(
            s.text(r#"{"pw":"k\/y\\\"q>?~~~"}"#),
            r#"{"pw":"[redacted]"}"#
        );
        assert_eq!(
            s.text(r#"{"pw":"k/y\\\"q\u003e?~~~"}"#),
            r#"{"pw":"[redacted]"}"#
        );
    }
}

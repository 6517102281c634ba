//! Keeping secrets out of what Ferry writes down: build logs, test reports, events,
//! notifications. Every secret value is replaced by `[redacted]`, and so are its
//! base64 and URL-encoded forms (a Basic auth header, a DSN in a query string, a debug
//! page quoting the environment), which a plain search would miss.

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
            needles.extend(base64_forms(&s));
            let url = url_encoded(&s);
            if url != s {
                needles.push(url);
            }
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

/// Values of `KEY=value` lines (a `.env` file, optionally with `export` and quotes):
/// every one counts as a secret, since the file holds production credentials.
pub fn env_values(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The base64 text a secret becomes inside a longer encoded string (`user:secret` in a
/// Basic auth header): one per alignment of its first byte in the 3-byte groups, only
/// the characters that the secret's own bits decide.
fn base64_forms(secret: &str) -> Vec<String> {
    (0..3usize)
        .map(|k| {
            let mut bytes = vec![0u8; k];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
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

    #[test]
    fn env_values_are_read_from_dotenv_lines() {
        let v = env_values("# c=omment\nDB_PASSWORD=\"s3cr3t\"\nexport API_KEY='k-123'\nEMPTY=\n");
        assert_eq!(v, ["s3cr3t", "k-123"]);
    }
}

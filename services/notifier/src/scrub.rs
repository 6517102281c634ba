//! Keeps secrets out of messages: every configured secret value is replaced by
//! `[redacted]` in everything a notice says (causes quote commands, URLs and output).

use crate::notice::Notice;
use ferry_shared::config::FerryConfig;
use ferry_shared::secret::REDACTED;

#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn from_config(cfg: &FerryConfig) -> Self {
        let mut secrets = cfg.secret_values();
        for c in cfg.notify.channels.values() {
            for s in [&c.url, &c.secret, &c.password].into_iter().flatten() {
                secrets.push(s.expose().clone());
            }
            // The token inside a robot URL (`access_token=...`, `key=...`, `/hooks/T../B../x`).
            if let Some(url) = &c.url {
                secrets.extend(url_tokens(url.expose()));
            }
        }
        Self::new(secrets)
    }

    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn notice(&self, n: &mut Notice) {
        for text in n.texts_mut() {
            if self.secrets.iter().any(|s| text.contains(s.as_str())) {
                *text = self.text(text);
            }
        }
    }
}

/// Query values and long path segments of a URL: where robots keep their tokens.
fn url_tokens(url: &str) -> Vec<String> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let values = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(_, v)| v));
    let segments = path.split('/').skip(3).filter(|seg| seg.len() >= 16);
    values.chain(segments).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_longest_first() {
        let s = Scrubber::new(vec!["hunter2".into(), "hunter2-prod".into(), "ab".into()]);
        assert_eq!(
            s.text("pw=hunter2-prod and hunter2, ab stays"),
            "pw=[redacted] and [redacted], ab stays"
        );
    }

    #[test]
    fn robot_tokens_are_found_in_urls() {
        let t = url_tokens("https://oapi.dingtalk.com/robot/send?access_token=abc123&x=1");
        assert!(t.contains(&"abc123".to_owned()));
        let t = url_tokens("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX");
        assert!(t.contains(&"XXXXXXXXXXXXXXXXXXXXXXXX".to_owned()));
    }
}

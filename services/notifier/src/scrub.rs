//! Keeps secrets out of messages: every configured secret value (and its encoded forms,
//! see `ferry_shared::scrub`) is replaced by `[redacted]` in everything a notice says
//! (causes quote commands, URLs and output), the channels' own secrets included.

use crate::notice::Notice;
use ferry_shared::config::FerryConfig;

#[derive(Clone, Debug, Default)]
pub struct Scrubber(ferry_shared::scrub::Scrubber);

impl Scrubber {
    pub fn from_config(cfg: &FerryConfig) -> Self {
        let mut secrets = cfg.secret_values();
        for c in cfg.notify.channels.values() {
            for s in c.kind.secrets() {
                secrets.push(s.expose().clone());
            }
            // The token inside a robot URL (`access_token=...`, `key=...`, `/hooks/T../B../x`).
            if let Some(url) = c.kind.url() {
                secrets.extend(url_tokens(url.expose()));
            }
        }
        Self::new(secrets)
    }

    pub fn new(secrets: Vec<String>) -> Self {
        Self(ferry_shared::scrub::Scrubber::new(secrets))
    }

    pub fn text(&self, s: &str) -> String {
        self.0.text(s)
    }

    pub fn notice(&self, n: &mut Notice) {
        for text in n.texts_mut() {
            if self.0.finds(text) {
                *text = self.0.text(text);
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
    fn robot_tokens_are_found_in_urls() {
        let t = url_tokens("https://oapi.dingtalk.com/robot/send?access_token=abc123&x=1");
        assert!(t.contains(&"abc123".to_owned()));
        let t = url_tokens("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX");
        assert!(t.contains(&"XXXXXXXXXXXXXXXXXXXXXXXX".to_owned()));
    }
}

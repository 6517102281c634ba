//! The build log: kept in memory up to a cap (the end wins: that is where failures
//! are), scrubbed of every configured secret, and stored by run id for
//! `<log_dir>/<run_id>/build.log`. The text is scrubbed *before* it is cut: a cut
//! through a secret would leave a piece no scrubber recognises.

use ferry_shared::scrub::Scrubber;
use std::path::{Path, PathBuf};

pub struct BuildLog {
    text: String,
    cap: usize,
    cut: bool,
    secrets: Scrubber,
}

impl BuildLog {
    pub fn new(cap: usize, secrets: Vec<String>) -> Self {
        Self {
            text: String::new(),
            cap,
            cut: false,
            secrets: Scrubber::new(secrets),
        }
    }

    pub fn push(&mut self, chunk: &str) {
        self.text.push_str(chunk);
        if self.text.len() > self.cap * 2 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.text.len() > self.cap {
            self.text = self.secrets.text(&self.text);
        }
        if self.text.len() > self.cap {
            let mut start = self.text.len() - self.cap;
            while !self.text.is_char_boundary(start) {
                start += 1;
            }
            self.text.drain(..start);
            self.cut = true;
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        self.secrets.text(text)
    }

    /// The whole (capped, scrubbed) log.
    pub fn finish(mut self) -> String {
        self.trim();
        let head = if self.cut {
            "[... earlier output cut: build.max_log_bytes ...]\n"
        } else {
            ""
        };
        format!("{head}{}", self.scrub(&self.text))
    }

    /// The last `n` non-empty lines, scrubbed: the part of a failure people read.
    pub fn tail(&self, n: usize) -> String {
        let text = self.scrub(&self.text);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn store(text: &str, log_dir: &Path, run_id: &str) -> std::io::Result<PathBuf> {
        let dir = log_dir.join(run_id);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("build.log");
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_and_the_end_is_kept() {
        let mut log = BuildLog::new(40, vec!["hunter22".into(), "ab".into()]);
        log.push("Step 1/3: password=hunter22\n");
        log.push(&"x".repeat(100));
        log.push("\nlast line mentions hunter22\n");
        let text = log.finish();
        assert!(!text.contains("hunter22"));
        assert!(text.ends_with("last line mentions [redacted]\n"));
        assert!(text.starts_with("[... earlier output cut"));
    }

    /// The cut used to fall inside the secret, leaving `nter22-prod-key` behind.
    #[test]
    fn a_secret_cut_by_the_cap_is_scrubbed_before_the_cut() {
        let secret = "hunter22-prod-key";
        let mut log = BuildLog::new(40, vec![secret.into()]);
        // 80 bytes, then the secret, then 30: the 40-byte cap starts inside the secret.
        log.push(&"a".repeat(80));
        log.push(&format!("{secret}{}", "b".repeat(30)));
        let text = log.finish();
        for piece in ["prod-key", "nter22", "-key"] {
            assert!(!text.contains(piece), "`{piece}` left in {text:?}");
        }
    }
}

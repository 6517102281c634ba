//! `[log]`: how services write their log lines.

use super::problem::Problem;
use super::word::{self, words};
use serde::{Deserialize, Serialize};

words! {
    /// How log lines are written.
    #[derive(Default)]
    pub enum LogFormat ("a log format") {
        /// Human-readable lines.
        #[default]
        Text = "text",
        /// One JSON object per line, for a log collector.
        Json = "json",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,lapin=warn`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: "info,lapin=warn".into(),
        }
    }
}

/// `[log]` as written: `format` is `text` or `json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LogFile {
    format: String,
    level: String,
}

impl Default for LogFile {
    fn default() -> Self {
        let typed = LogConfig::default();
        Self {
            format: typed.format.to_string(),
            level: typed.level,
        }
    }
}

impl LogFile {
    pub(super) fn parse(self, out: &mut Vec<Problem>) -> LogConfig {
        LogConfig {
            format: word::parse(&self.format, "log.format", LogFormat::Text, out),
            level: self.level,
        }
    }
}

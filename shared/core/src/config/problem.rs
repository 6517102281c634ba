//! What is wrong with a configuration: problems named by their full key, collected
//! section by section so that a bad file is fixed in one go, and the errors of loading.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the configuration, named by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Where the checks of each section put what they find.
pub(crate) trait Report {
    fn bad(&mut self, key: impl Into<String>, message: impl Into<String>);
}

impl Report for Vec<Problem> {
    fn bad(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read the configuration file {path}: {source}; set FERRY_CONFIG to the path of ferry.toml"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: config::ConfigError,
    },
    #[error("configuration {path} has {} problem(s):\n{}", .problems.len(), list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

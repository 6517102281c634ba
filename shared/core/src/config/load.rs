//! Reading the configuration: the file, then `FERRY__SECTION__KEY` overrides from the
//! environment, then parsing and checking every section.

use super::file::FileConfig;
use super::host_files::HostFiles;
use super::problem::ConfigError;
use super::{DEFAULT_CONFIG_PATH, FerryConfig};
use std::path::{Path, PathBuf};

/// Keys whose `FERRY__...` override is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "broker.addresses",
    "broker.retry_delays_ms",
    "notify.allow_hosts",
];

/// The path named by `FERRY_CONFIG`, or the default.
pub fn config_path() -> PathBuf {
    std::env::var_os("FERRY_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

impl FerryConfig {
    /// Read `path`, apply `FERRY__SECTION__KEY` overrides from the environment, validate
    /// everything, the deploy hosts' credential files included.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_for(path, HostFiles::Check)
    }

    /// [`FerryConfig::load`] for a process that opens the deploy hosts' credential files
    /// or not ([`HostFiles`]).
    pub fn load_for(path: &Path, host_files: HostFiles) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_with_env(&text, path, host_files)
    }

    pub fn from_toml_with_env(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, path, HostFiles::Check)
    }

    fn parse_with_env(text: &str, path: &Path, host_files: HostFiles) -> Result<Self, ConfigError> {
        let parse = |source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        // Overrides are set as the strings they are: `config`'s own environment source
        // would turn `007007` into the number 7007 on the way into a string field (a
        // password or token). Numbers and booleans are read from the strings when the
        // configuration is deserialized.
        for (name, value) in std::env::vars() {
            let Some(rest) = name.strip_prefix("FERRY__") else {
                continue;
            };
            let key = rest.to_lowercase().replace("__", ".");
            builder = if LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> = value.split(',').map(|v| v.trim().to_owned()).collect();
                builder.set_override(key, items)
            } else {
                builder.set_override(key, value)
            }
            .map_err(parse)?;
        }
        let file: FileConfig = builder
            .build()
            .map_err(parse)?
            .try_deserialize()
            .map_err(parse)?;
        file.parse(host_files)
            .map_err(|problems| ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
    }
}

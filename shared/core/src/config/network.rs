//! Which network a build's `RUN` steps and the tester's containers get
//! (`build.network`, `projects.<p>.tests.container.network`).
//!
//! The default is the engine's isolated default network (a bridge behind NAT, or only
//! loopback on a daemon started with `--bridge=none`): code from a commit runs in those
//! steps, and with the host's network it could reach the host's loopback services (the
//! broker, a local registry, the Docker API) and the cloud metadata address. `host` is
//! an explicit opt-in and is warned about at start-up.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ContainerNetwork {
    /// The engine's default network (`default`, also spelled `bridge`).
    #[default]
    Isolated,
    /// No network at all but the container's own loopback.
    None,
    /// The host's network stack: everything the host reaches, its loopback included.
    Host,
    /// A user-defined network on the engine (e.g. a bridge with a package proxy).
    Named(String),
}

impl ContainerNetwork {
    /// The engine's `NetworkMode` value.
    pub fn engine_mode(&self) -> &str {
        match self {
            Self::Isolated => "default",
            Self::None => "none",
            Self::Host => "host",
            Self::Named(n) => n,
        }
    }

    pub fn is_host(&self) -> bool {
        matches!(self, Self::Host)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a network: use `default` (isolated, the default), `none`, `host` (the host's own network, reaches its loopback services) or the name of a network on the engine"
)]
pub struct NetworkError(String);

impl TryFrom<String> for ContainerNetwork {
    type Error = NetworkError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(match s.as_str() {
            "default" | "bridge" => Self::Isolated,
            "none" => Self::None,
            "host" => Self::Host,
            // `container:<id>` would join another container's namespace (which may be
            // the host's): not offered. Docker's network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
            name if name.len() <= 128
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) =>
            {
                Self::Named(s)
            }
            _ => return Err(NetworkError(s.chars().take(100).collect())),
        })
    }
}

impl From<ContainerNetwork> for String {
    fn from(n: ContainerNetwork) -> Self {
        n.to_string()
    }
}

impl fmt::Display for ContainerNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.engine_mode())
    }
}

impl super::FerryConfig {
    /// Start-up warnings (not errors) about the networks commit code runs in.
    pub fn network_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.build.network.is_host() {
            w.push(
                "build.network = \"host\": RUN steps of every build share the build host's network and can reach its loopback services (the broker, a local registry, the Docker API) and cloud metadata; use \"default\" unless the build host is isolated itself (see README, Builds)".to_owned(),
            );
        }
        for (name, p) in &self.projects {
            if let Some(c) = p.tests.as_ref().and_then(|t| t.container.as_ref())
                && c.network.is_host()
            {
                w.push(format!(
                    "projects.{name}.tests.container.network = \"host\": the test container shares its Docker host's network, loopback services included"
                ));
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_the_default_is_isolated() {
        let parse = |s: &str| ContainerNetwork::try_from(s.to_owned());
        assert_eq!(ContainerNetwork::default().engine_mode(), "default");
        assert_eq!(parse("bridge").unwrap(), ContainerNetwork::Isolated);
        assert_eq!(parse("none").unwrap(), ContainerNetwork::None);
        assert!(parse("host").unwrap().is_host());
        assert_eq!(
            parse("ferry-builds").unwrap(),
            ContainerNetwork::Named("ferry-builds".into())
        );
        for bad in ["", "container:abc", "-x", "a b", "../x"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

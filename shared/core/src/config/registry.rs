//! `[registry]`: where images are pushed and pulled from.

use super::problem::{Problem, Report};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host:port` of the registry, e.g. `harbor.example.com` or `127.0.0.1:5000`.
    pub address: String,
    pub username: String,
    pub password: Secret<String>,
}

impl RegistryConfig {
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.address.is_empty() || self.address.contains("://") {
            out.bad(
                "registry.address",
                format!("`{}` must be host[:port], without a scheme", self.address),
            );
        }
    }
}

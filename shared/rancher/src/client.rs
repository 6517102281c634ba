//! The HTTP client for a Rancher server: HTTP or HTTPS with the public roots, plus the
//! CA in `ca_file` (a Rancher behind its own CA), and a deadline on every request.

use ferry_shared::config::RancherConfig;
use std::time::Duration;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read rancher.ca_file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("rancher.ca_file {path} is not a PEM certificate: {why}")]
    NotPem { path: String, why: String },
    #[error("cannot set up the HTTP client for Rancher: {0}")]
    Build(String),
}

pub fn rancher_client(r: &RancherConfig) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if let Some(path) = &r.ca_file {
        let shown = || path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| ClientError::CaFile {
            path: shown(),
            why: e.to_string(),
        })?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| ClientError::NotPem {
            path: shown(),
            why: e.to_string(),
        })?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

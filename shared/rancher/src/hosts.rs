//! The Docker hosts of a Rancher environment, from Rancher's own hosts API: what the
//! SaltStack step read from its roster, kept current by Rancher instead of by hand.

use crate::client::{ClientError, rancher_client};
use ferry_shared::config::{DockerHostConfig, RancherConfig};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot list Rancher's hosts at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error(
        "Rancher answered {status} listing its hosts at {url}; check the rancher keys and project_id"
    )]
    Refused {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("Rancher's host list at {url} is not understood: {why}")]
    NotUnderstood { url: String, why: String },
}

/// The active hosts as `(name, how to reach its engine)`; hosts not `active`
/// (disconnected, reconnecting, inactive) are left out.
pub async fn rancher_hosts(
    r: &RancherConfig,
) -> Result<Vec<(String, DockerHostConfig)>, HostsError> {
    #[derive(serde::Deserialize)]
    struct Hosts {
        data: Vec<Host>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Host {
        #[serde(default)]
        hostname: String,
        #[serde(default)]
        agent_ip_address: Option<String>,
        #[serde(default)]
        state: String,
    }
    let url = format!(
        "{}/v2-beta/projects/{}/hosts",
        r.url.trim_end_matches('/'),
        r.project_id
    );
    let res = rancher_client(r)?
        .get(&url)
        .basic_auth(&r.access_key, Some(r.secret_key.expose()))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| HostsError::Unreachable {
            url: url.clone(),
            why: e.to_string(),
        })?;
    if !res.status().is_success() {
        return Err(HostsError::Refused {
            url,
            status: res.status(),
        });
    }
    let hosts: Hosts = res.json().await.map_err(|e| HostsError::NotUnderstood {
        url: url.clone(),
        why: e.to_string(),
    })?;
    Ok(hosts
        .data
        .into_iter()
        .filter(|h| h.state == "active")
        .filter_map(|h| {
            let ip = h.agent_ip_address?;
            let name = format!(
                "rancher:{}",
                if h.hostname.is_empty() {
                    &ip
                } else {
                    &h.hostname
                }
            );
            Some((
                name,
                DockerHostConfig {
                    url: r.host_url.replace("{address}", &ip),
                    address: Some(ip),
                    tls_dir: r.host_tls_dir.clone(),
                    ssh_key: None,
                },
            ))
        })
        .collect())
}

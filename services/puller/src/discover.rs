//! The Docker hosts of a Rancher environment, from Rancher's own hosts API: what the
//! SaltStack step read from its roster, kept current by Rancher instead of by hand.

use ferry_shared::config::{DockerHostConfig, RancherConfig};
use std::time::Duration;

/// The HTTP client for a Rancher server: HTTP or HTTPS with the public roots, plus the
/// CA in `ca_file` (a Rancher behind its own CA), and a deadline on every request.
pub fn rancher_client(r: &RancherConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if let Some(path) = &r.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read rancher.ca_file {}: {e}", path.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "rancher.ca_file {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client for Rancher: {e}"))
}

/// The active hosts as `(name, how to reach its engine)`; hosts not `active`
/// (disconnected, reconnecting, inactive) are left out.
pub async fn rancher_hosts(r: &RancherConfig) -> Result<Vec<(String, DockerHostConfig)>, String> {
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
        .map_err(|e| format!("cannot list Rancher's hosts at {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!(
            "Rancher answered {} listing its hosts at {url}; check the rancher keys and project_id",
            res.status()
        ));
    }
    let hosts: Hosts = res
        .json()
        .await
        .map_err(|e| format!("Rancher's host list at {url} is not understood: {e}"))?;
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

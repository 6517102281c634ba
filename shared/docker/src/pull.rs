//! Pulling one image onto many hosts at once, each with its own deadline and retries,
//! skipping hosts that already have it.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use ferry_shared::config::{DockerHostConfig, FerryConfig, PullConfig};
use ferry_shared::event::{HostOutcome, HostTiming};
use futures_util::{StreamExt, stream};
use std::time::{Duration, Instant};

/// One host's result.
pub struct HostResult {
    pub timing: HostTiming,
    pub error: Option<String>,
}

/// Pull `image` (`repo@sha256:...`) onto every `(name, url)` host (configured hosts are
/// reached as configured: TLS, SSH).
pub async fn pull_all(
    cfg: &FerryConfig,
    image: &str,
    hosts: &[(String, String)],
) -> Vec<HostResult> {
    let hosts: Vec<(String, DockerHostConfig)> = hosts
        .iter()
        .map(|(name, url)| {
            let h = cfg
                .docker_hosts
                .get(name)
                .cloned()
                .unwrap_or(DockerHostConfig {
                    url: url.clone(),
                    address: None,
                    tls_dir: None,
                    ssh_key: None,
                });
            (name.clone(), h)
        })
        .collect();
    pull_onto(cfg, image, &hosts).await
}

/// Pull `image` onto every `(name, host)`.
pub async fn pull_onto(
    cfg: &FerryConfig,
    image: &str,
    hosts: &[(String, DockerHostConfig)],
) -> Vec<HostResult> {
    let p = &cfg.pull;
    // Only an image on registry.address gets the registry's credentials: the engine
    // would hand them to whatever host the reference names.
    let credentials = crate::registry_auth::credentials_for(cfg, image);
    stream::iter(hosts.iter().cloned())
        .map(|(name, host)| {
            let credentials = credentials.clone();
            async move { pull_one(p, &name, &host, image, credentials).await }
        })
        .buffer_unordered(p.concurrency)
        .collect()
        .await
}

async fn pull_one(
    p: &PullConfig,
    name: &str,
    host: &DockerHostConfig,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> HostResult {
    let started = Instant::now();
    // One deadline for all attempts: the handler must answer (and publish what is
    // ready) well before its own timeout aborts it.
    let deadline = started + Duration::from_secs(p.timeout_secs);
    let mut last = String::new();
    for attempt in 1..=p.attempts_per_host {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, try_pull(host, image, credentials.clone())).await {
            Ok(Ok(present)) => {
                let outcome = if present {
                    HostOutcome::Present
                } else {
                    HostOutcome::Pulled
                };
                return HostResult {
                    timing: timing(name, started, outcome),
                    error: None,
                };
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("not pulled within {} s", p.timeout_secs),
        }
        if attempt < p.attempts_per_host {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
    let error = format!("{name} ({}): {last}", host.url);
    HostResult {
        timing: timing(name, started, HostOutcome::Failed(last)),
        error: Some(error),
    }
}

fn timing(host: &str, started: Instant, outcome: HostOutcome) -> HostTiming {
    HostTiming {
        host: host.to_owned(),
        millis: started.elapsed().as_millis() as u64,
        outcome,
        endpoint: None,
    }
}

/// True when the host already had the image.
async fn try_pull(
    host: &DockerHostConfig,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> Result<bool, String> {
    let docker = crate::connect_host(host).await.map_err(|e| e.to_string())?;
    if docker.inspect_image(image).await.is_ok() {
        return Ok(true);
    }
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = docker.create_image(Some(options), None, credentials);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(detail) = info.error_detail {
            return Err(detail.message.unwrap_or_else(|| "pull failed".into()));
        }
    }
    // The stream ending is not proof: check the image is really there.
    docker
        .inspect_image(image)
        .await
        .map(|_| false)
        .map_err(|e| format!("pull reported success but the image is missing: {e}"))
}

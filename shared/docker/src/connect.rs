//! Connecting to a Docker Engine (a "host") by URL: `unix:///path.sock`,
//! `tcp://host:2375` or `http://host:2375`. The API version is negotiated, since hosts
//! run older engines than the client knows (Docker 20.10 speaks API 1.41).

use bollard::{API_DEFAULT_VERSION, Docker};

/// Seconds a single Engine API request may take (a build or push streams for longer
/// than this per chunk only when the engine stalls).
const REQUEST_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker Engine at {url}: {source}; check that dockerd runs and the URL (build.docker_host / docker_hosts)"
    )]
    Connect {
        url: String,
        source: bollard::errors::Error,
    },
    #[error("`{0}` is not a Docker host URL: use unix://, tcp:// or http://")]
    Url(String),
}

/// A configured Docker host: TLS when it has a `tls_dir`, SSH for `ssh://`.
pub async fn connect_host(
    h: &ferry_shared::config::DockerHostConfig,
) -> Result<Docker, DockerError> {
    if h.url.starts_with("ssh://") {
        return connect_ssh(&h.url, h.ssh_key.as_deref()).await;
    }
    connect_with(&h.url, h.tls_dir.as_deref()).await
}

/// `ssh://user@host`: the engine through `docker system dial-stdio` on the host, with
/// this machine's ssh client (and `key`, if given).
pub async fn connect_ssh(url: &str, key: Option<&std::path::Path>) -> Result<Docker, DockerError> {
    let key = key.map(|k| k.display().to_string());
    negotiated(
        url,
        Docker::connect_with_ssh(url, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION, key),
    )
    .await
}

pub async fn connect(url: &str) -> Result<Docker, DockerError> {
    connect_with(url, None).await
}

/// `tls_dir`: `ca.pem`, `cert.pem` and `key.pem` for a `tcp://` host behind TLS.
pub async fn connect_with(
    url: &str,
    tls_dir: Option<&std::path::Path>,
) -> Result<Docker, DockerError> {
    let client = if let Some(dir) = tls_dir {
        Docker::connect_with_ssl(
            url,
            &dir.join("key.pem"),
            &dir.join("cert.pem"),
            &dir.join("ca.pem"),
            REQUEST_TIMEOUT_SECS,
            API_DEFAULT_VERSION,
        )
    } else if url.starts_with("unix://") {
        Docker::connect_with_unix(url, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if url.starts_with("tcp://") || url.starts_with("http://") {
        Docker::connect_with_http(url, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else {
        return Err(DockerError::Url(url.to_owned()));
    };
    negotiated(url, client).await
}

/// The client, once it agreed on an API version with the engine (which also proves
/// the engine answers).
async fn negotiated(
    url: &str,
    client: Result<Docker, bollard::errors::Error>,
) -> Result<Docker, DockerError> {
    let failed = |source| DockerError::Connect {
        url: url.to_owned(),
        source,
    };
    client
        .map_err(failed)?
        .negotiate_version()
        .await
        .map_err(failed)
}

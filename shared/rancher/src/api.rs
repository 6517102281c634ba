//! A small client of Rancher 1.6's `v2-beta` API: basic auth with the environment's API
//! keys, JSON in and out, every request with a deadline, over HTTP or HTTPS (public
//! roots, plus `rancher.ca_file` for a server with its own CA).

use crate::client::{ClientError, rancher_client};
use ferry_shared::config::RancherConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a call failed: the status and Rancher's error `code` (e.g. `ActionNotAvailable`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Rancher answered {status} {code}: {message}")]
    Status {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("cannot reach Rancher: {0}")]
    Transport(String),
    /// The server's certificate is not trusted: retrying cannot help.
    #[error("cannot trust Rancher's certificate: {0}")]
    Certificate(String),
    /// The client could not be set up (`rancher.ca_file`): retrying cannot help.
    #[error(transparent)]
    Client(#[from] ClientError),
}

pub struct Api {
    client: Result<reqwest::Client, ClientError>,
    service_url: String,
    access_key: String,
    secret_key: String,
}

impl Api {
    pub fn new(r: &RancherConfig) -> Self {
        Self {
            client: rancher_client(r),
            service_url: format!(
                "{}/v2-beta/projects/{}/services/{}",
                r.url.trim_end_matches('/'),
                r.project_id,
                r.service_id
            ),
            access_key: r.access_key.clone(),
            secret_key: r.secret_key.expose().clone(),
        }
    }

    pub async fn service(&self) -> Result<Value, ApiError> {
        self.call(Method::GET, &self.service_url, None).await
    }

    pub async fn action(&self, action: &str, body: Value) -> Result<Value, ApiError> {
        self.call(
            Method::POST,
            &format!("{}/?action={action}", self.service_url),
            Some(body),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let client = self.client.as_ref().map_err(|e| e.clone())?;
        let mut request = client
            .request(method, url)
            .basic_auth(&self.access_key, Some(&self.secret_key))
            .header("accept", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        // Without the URL: reqwest's errors name it, and it is already in the config.
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(json)
        } else {
            let text = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
            Err(ApiError::Status {
                status,
                code: text("code"),
                message: text("message"),
            })
        }
    }
}

/// reqwest's error with its causes (the TLS reason is only in the chain).
fn transport_error(e: &reqwest::Error) -> ApiError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if text.contains("certificate") {
        text.push_str("; if a private CA signed Rancher's certificate, set rancher.ca_file to it");
        return ApiError::Certificate(text);
    }
    ApiError::Transport(text)
}

//! A small client of Rancher 1.6's `v2-beta` API: basic auth with the environment's API
//! keys, JSON in and out, every request with a deadline.

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed: the status and Rancher's error `code` (e.g. `ActionNotAvailable`).
#[derive(Debug)]
pub enum ApiError {
    Status {
        status: StatusCode,
        code: String,
        message: String,
    },
    Transport(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status {
                status,
                code,
                message,
            } => write!(f, "Rancher answered {status} {code}: {message}"),
            ApiError::Transport(e) => write!(f, "cannot reach Rancher: {e}"),
        }
    }
}

pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    service_url: String,
    auth: String,
}

impl Api {
    pub fn new(
        base: &str,
        project_id: &str,
        service_id: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Self {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{access_key}:{secret_key}"));
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            service_url: format!(
                "{}/v2-beta/projects/{project_id}/services/{service_id}",
                base.trim_end_matches('/')
            ),
            auth: format!("Basic {token}"),
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
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| ApiError::Transport(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| ApiError::Transport("body timed out".into()))?
            .map_err(|e| ApiError::Transport(e.to_string()))?
            .to_bytes();
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

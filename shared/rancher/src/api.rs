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
    /// `<url>/v2-beta/projects/<project id>`
    project_url: String,
    access_key: String,
    secret_key: String,
}

/// States of a resource Rancher is removing or has removed: such a stack or service
/// is gone for Ferry (Rancher keeps listing it for a while).
const GONE: &[&str] = &["removing", "removed", "purging", "purged"];

impl Api {
    pub fn new(r: &RancherConfig) -> Self {
        Self {
            client: rancher_client(r),
            project_url: format!(
                "{}/v2-beta/projects/{}",
                r.url.trim_end_matches('/'),
                r.project_id
            ),
            access_key: r.access_key.clone(),
            secret_key: r.secret_key.expose().clone(),
        }
    }

    fn service_url(&self, id: &str) -> String {
        format!("{}/services/{id}", self.project_url)
    }

    pub async fn service(&self, id: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, &self.service_url(id), None).await
    }

    pub async fn action(&self, id: &str, action: &str, body: Value) -> Result<Value, ApiError> {
        let url = format!("{}/?action={action}", self.service_url(id));
        self.call(Method::POST, &url, Some(body)).await
    }

    /// Change a service's scale (`PUT` of the resource, as the v2-beta API scales).
    pub async fn set_scale(&self, id: &str, scale: u32) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "scale": scale });
        self.call(Method::PUT, &self.service_url(id), Some(body))
            .await
    }

    /// The service's containers (its `instances` link).
    pub async fn instances(&self, id: &str) -> Result<Vec<Value>, ApiError> {
        let url = format!("{}/instances", self.service_url(id));
        Ok(data(self.call(Method::GET, &url, None).await?))
    }

    /// The environment's hosts (every state).
    pub async fn hosts(&self) -> Result<Vec<Value>, ApiError> {
        let url = format!("{}/hosts", self.project_url);
        Ok(data(self.call(Method::GET, &url, None).await?))
    }

    /// The stack named `name`, unless it is gone.
    pub async fn find_stack(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let url = format!("{}/stacks", self.project_url);
        let list = self.list(&url, &[("name", name)]).await?;
        Ok(list.into_iter().find(|s| s["name"] == name))
    }

    /// The service named `name` in the stack `stack_id`, unless it is gone.
    pub async fn find_service(
        &self,
        stack_id: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let url = format!("{}/services", self.project_url);
        let list = self
            .list(&url, &[("name", name), ("stackId", stack_id)])
            .await?;
        Ok(list
            .into_iter()
            .find(|s| s["name"] == name && s["stackId"] == stack_id))
    }

    pub async fn create_stack(&self, name: &str) -> Result<Value, ApiError> {
        let body = serde_json::json!({
            "name": name, "startOnCreate": true,
            "description": "created by Ferry for its first deploy",
        });
        let url = format!("{}/stacks", self.project_url);
        self.call(Method::POST, &url, Some(body)).await
    }

    /// Create a service (`body`: name, stackId, scale, launchConfig, startOnCreate).
    pub async fn create_service(&self, body: Value) -> Result<Value, ApiError> {
        let url = format!("{}/services", self.project_url);
        self.call(Method::POST, &url, Some(body)).await
    }

    /// A collection filtered by `query`, without what Rancher removed (it keeps listing
    /// removed resources for a while unless asked not to, as rancher-compose does) or
    /// is removing.
    async fn list(&self, url: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, ApiError> {
        let query = query.iter().copied().chain([("removed_null", "1")]);
        let url = reqwest::Url::parse_with_params(url, query)
            .map_err(|e| ApiError::Transport(format!("bad Rancher URL {url}: {e}")))?;
        let all = data(self.call(Method::GET, url.as_str(), None).await?);
        Ok(all
            .into_iter()
            .filter(|r| !GONE.contains(&r["state"].as_str().unwrap_or_default()))
            .collect())
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

/// A collection's resources.
fn data(collection: Value) -> Vec<Value> {
    match collection {
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
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

//! Harbor: a `PUSH_ARTIFACT` webhook for an image built elsewhere. Harbor sends the
//! policy's "Auth Header" verbatim as `Authorization`.

use crate::trigger::{ImagePush, Parsed, Rejection, header, json, require_json};
use crate::verify::token_matches;
use axum::http::HeaderMap;
use ferry_shared::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    occur_at: Option<i64>,
    event_data: Option<EventData>,
}

#[derive(Debug, Deserialize)]
struct EventData {
    #[serde(default)]
    resources: Vec<Resource>,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Resource {
    digest: String,
    #[serde(default)]
    tag: Option<String>,
    resource_url: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    repo_full_name: String,
}

pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret<String>>,
) -> Result<Parsed, Rejection> {
    if let Some(secret) = secret
        && !token_matches(secret, header(headers, "authorization"))
    {
        return Err(Rejection::unauthorized(
            "missing or wrong Authorization header: set the policy's Auth Header in Harbor",
        ));
    }
    require_json(headers)?;
    let p: Payload = json(body)?;
    if p.kind != "PUSH_ARTIFACT" {
        return Ok(Parsed::ignored(format!(
            "`{}` events do not start runs; send PUSH_ARTIFACT only",
            p.kind
        )));
    }
    let data = p
        .event_data
        .ok_or_else(|| Rejection::bad_request("PUSH_ARTIFACT without event_data"))?;
    let r = data
        .resources
        .into_iter()
        .next()
        .ok_or_else(|| Rejection::bad_request("PUSH_ARTIFACT without resources"))?;
    let digest = r.digest;
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(Rejection::bad_request(format!(
            "`{digest}` is not a sha256 digest"
        )));
    }
    // resource_url is `host/namespace/name:tag` (or `@sha256:...`): keep the image name.
    let image = r.resource_url.split('@').next().unwrap_or("");
    let image = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    if image.is_empty() {
        return Err(Rejection::bad_request("resource_url is empty"));
    }
    let tag = r
        .tag
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| digest.clone());
    Ok(Parsed::Image(ImagePush {
        occurred_at: p.occur_at,
        repository: data.repository.repo_full_name,
        image: image.to_owned(),
        tag,
        digest,
        operator: p.operator,
    }))
}

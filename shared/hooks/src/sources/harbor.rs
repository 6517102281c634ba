//! Harbor: a `PUSH_ARTIFACT` webhook for an image built elsewhere. Harbor sends the
//! policy's "Auth Header" verbatim as `Authorization`.

use crate::trigger::{ImagePush, Parsed, Rejection, header, json, require_json};
use crate::verify::token_matches;
use ferry_shared::image_ref::ImageRef;
use ferry_shared::secret::Secret;
use http::HeaderMap;
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
    if let Some(secret) = secret {
        check_auth(headers, secret)?;
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
    // resource_url is `host[:port]/namespace/name:tag` (or `@sha256:...`): parsed with
    // Docker's grammar, since its host decides which registry the image is pulled from
    // (and whether Ferry's credentials go along). Matching checks host and repository.
    let reference = ImageRef::parse(&r.resource_url)
        .map_err(|e| Rejection::bad_request(format!("resource_url: {e}")))?;
    if let Some(d) = reference.digest()
        && d != digest
    {
        return Err(Rejection::bad_request(format!(
            "resource_url names digest `{d}`, the resource `{digest}`: send one artifact"
        )));
    }
    if !reference
        .repository()
        .eq_ignore_ascii_case(&data.repository.repo_full_name)
    {
        return Ok(Parsed::ignored(format!(
            "resource_url names repository `{}`, repo_full_name `{}`: they must agree",
            reference.repository(),
            data.repository
                .repo_full_name
                .chars()
                .take(200)
                .collect::<String>()
        )));
    }
    let tag = match r.tag.filter(|t| !t.is_empty()) {
        Some(t) => {
            // The tag goes into an image reference: it must be one.
            ImageRef::parse(&format!("{}:{t}", reference.name())).map_err(|_| {
                Rejection::bad_request(format!(
                    "`{}` is not an image tag",
                    t.chars().take(200).collect::<String>()
                ))
            })?;
            t
        }
        None => digest.clone(),
    };
    Ok(Parsed::Image(ImagePush {
        occurred_at: p.occur_at,
        registry: reference.registry().to_owned(),
        repository: reference.repository().to_owned(),
        image: reference.name(),
        tag,
        digest,
        operator: p.operator,
    }))
}

/// Harbor sends its policy's Auth Header verbatim as `Authorization` (checked before the
/// body is read too).
pub fn check_auth(headers: &HeaderMap, secret: &Secret<String>) -> Result<(), Rejection> {
    if token_matches(secret, header(headers, "authorization")) {
        Ok(())
    } else {
        Err(Rejection::unauthorized(
            "missing or wrong Authorization header: set the policy's Auth Header in Harbor",
        ))
    }
}

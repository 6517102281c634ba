//! Just enough of the registry v2 API to answer "is this image still there, and by
//! which digest": manifest HEADs and tag lists, with basic auth or the bearer-token
//! flow Harbor and Docker Hub use.

use ferry_shared::config::RegistryConfig;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

pub struct Registry<'a> {
    cfg: &'a RegistryConfig,
    client: reqwest::Client,
}

/// `<registry>/<name>:<tag>@<digest>` split into its parts.
pub struct ImageRef {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Whether `tag` is one the builder gives `revision`: `<revision>`, or
/// `<revision>-cfg<commit>` when a config repo is overlaid.
pub fn tag_of_revision(tag: &str, revision: &str) -> bool {
    tag == revision
        || tag
            .strip_prefix(revision)
            .is_some_and(|rest| rest.starts_with("-cfg"))
}

impl ImageRef {
    pub fn parse(registry: &str, image: &str) -> Self {
        let rest = image
            .strip_prefix(registry)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(image);
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, Some(d.to_owned())),
            None => (rest, None),
        };
        // A `:` after the last `/` starts the tag (an earlier one is a port).
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_owned())),
            None => (rest, None),
        };
        Self {
            name: name.to_owned(),
            tag,
            digest,
        }
    }
}

impl<'a> Registry<'a> {
    pub fn new(cfg: &'a RegistryConfig) -> Self {
        Self {
            cfg,
            client: reqwest::Client::new(),
        }
    }

    /// Docker's rule: a registry on loopback speaks plain HTTP, any other HTTPS.
    fn base(&self) -> String {
        let host = self.cfg.address.split(':').next().unwrap_or_default();
        let plain = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        format!(
            "{}://{}",
            if plain { "http" } else { "https" },
            self.cfg.address
        )
    }

    /// The digest of `name:reference` (a tag or a digest); `None` when it is gone.
    pub async fn digest(&self, name: &str, reference: &str) -> Result<Option<String>, String> {
        let url = format!("{}/v2/{name}/manifests/{reference}", self.base());
        let res = self.send(reqwest::Method::HEAD, &url, true).await?;
        match res.status() {
            s if s.is_success() => Ok(res
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    reference
                        .starts_with("sha256:")
                        .then(|| reference.to_owned())
                })),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(format!("the registry answered {s} for {url}")),
        }
    }

    /// The repository's tags (empty when the repository is gone).
    pub async fn tags(&self, name: &str) -> Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let url = format!("{}/v2/{name}/tags/list", self.base());
        let res = self.send(reqwest::Method::GET, &url, false).await?;
        match res.status() {
            s if s.is_success() => Ok(res
                .json::<Tags>()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .tags
                .unwrap_or_default()),
            StatusCode::NOT_FOUND => Ok(vec![]),
            s => Err(format!("the registry answered {s} for {url}")),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        manifest: bool,
    ) -> Result<reqwest::Response, String> {
        let request = |bearer: Option<&str>| {
            let mut r = self.client.request(method.clone(), url);
            if manifest {
                r = r.header(ACCEPT, MANIFEST_TYPES);
            }
            match bearer {
                Some(t) => r.bearer_auth(t),
                None => r.basic_auth(&self.cfg.username, Some(self.cfg.password.expose())),
            }
        };
        let res = request(None)
            .send()
            .await
            .map_err(|e| format!("cannot reach the registry at {url}: {e}"))?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        let Some(challenge) = res
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .filter(|c| c.starts_with("Bearer "))
            .map(str::to_owned)
        else {
            return Err(format!(
                "the registry refused registry.username/password for {url}"
            ));
        };
        let token = self.token(&challenge).await?;
        request(Some(&token))
            .send()
            .await
            .map_err(|e| format!("cannot reach the registry at {url}: {e}"))
    }

    /// The bearer-token flow: ask the realm named in the challenge, with basic auth.
    async fn token(&self, challenge: &str) -> Result<String, String> {
        let param = |key: &str| {
            challenge
                .split(',')
                .filter_map(|p| p.trim().trim_start_matches("Bearer ").split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.trim_matches('"').to_owned())
        };
        let realm = param("realm").ok_or("the registry's auth challenge names no realm")?;
        let mut query = vec![];
        for key in ["service", "scope"] {
            if let Some(v) = param(key) {
                query.push((key, v));
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(alias = "access_token")]
            token: String,
        }
        let res = self
            .client
            .get(&realm)
            .query(&query)
            .basic_auth(&self.cfg.username, Some(self.cfg.password.expose()))
            .send()
            .await
            .map_err(|e| format!("cannot get a registry token from {realm}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!(
                "the registry's token service refused registry.username/password ({})",
                res.status()
            ));
        }
        res.json::<Token>()
            .await
            .map(|t| t.token)
            .map_err(|e| format!("the registry's token answer is not understood: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_tag_and_digest() {
        let r = ImageRef::parse(
            "127.0.0.1:5000",
            "127.0.0.1:5000/shop/web:5-cfgabc@sha256:00",
        );
        assert_eq!(r.name, "shop/web");
        assert_eq!(r.tag.as_deref(), Some("5-cfgabc"));
        assert_eq!(r.digest.as_deref(), Some("sha256:00"));
        let r = ImageRef::parse("reg", "shop/web");
        assert_eq!((r.name.as_str(), r.tag, r.digest), ("shop/web", None, None));
    }
}

//! Image references (`host[:port]/repository[:tag][@digest]`) parsed with Docker's own
//! grammar, so "which registry does this image live on" has one answer everywhere: the
//! hook-receiver decides with it whether a Harbor push may start a run, and every
//! service that pulls or pushes decides with it whether the registry's credentials may
//! go along (see `registry_auth`).

use crate::config::RegistryConfig;
use oci_spec::distribution::Reference;
use std::fmt;

#[derive(Debug, thiserror::Error)]
#[error("`{reference}` is not an image reference (host[:port]/repository[:tag][@digest]): {why}")]
pub struct ImageRefError {
    reference: String,
    why: String,
}

/// A parsed image reference. A name without a registry host is Docker Hub's
/// (`docker.io`), as the engine reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(Reference);

impl ImageRef {
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        Reference::try_from(reference)
            .map(Self)
            .map_err(|e| ImageRefError {
                // Bounded: the text may come from a webhook.
                reference: reference.chars().take(200).collect(),
                why: e.to_string(),
            })
    }

    /// `host[:port]` of the registry, e.g. `127.0.0.1:5000` or `docker.io`.
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The repository inside the registry, e.g. `shop/web`.
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    /// The tag (`latest` when the reference names neither a tag nor a digest).
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// `host/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// True when the image lives on `registry` (host and port compared exactly; host
    /// names are case-insensitive). `harbor.example.com` and `harbor.example.com:443`
    /// count as different: credentials are never sent on a guess.
    pub fn is_on(&self, registry: &RegistryConfig) -> bool {
        self.registry()
            .eq_ignore_ascii_case(registry.address.trim())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn registry(address: &str) -> RegistryConfig {
        RegistryConfig {
            address: address.into(),
            username: "u".into(),
            password: Secret::new("p".into()),
        }
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parts_of_a_reference() {
        let r = ImageRef::parse(&format!("127.0.0.1:5000/shop/web:v1@{DIGEST}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "shop/web");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(DIGEST));
        assert_eq!(r.name(), "127.0.0.1:5000/shop/web");
        assert!(r.is_on(&registry("127.0.0.1:5000")));
        assert!(!r.is_on(&registry("127.0.0.1:5001")));
        assert!(!r.is_on(&registry("127.0.0.1")));
    }

    #[test]
    fn only_the_host_part_names_the_registry() {
        let reg = registry("harbor.example.com");
        for foreign in [
            "attacker.example/evil:1",
            "harbor.example.com.attacker.example/shop/web:1",
            "attacker.example/harbor.example.com/shop/web:1",
            "shop/web:1", // Docker Hub
            "harbor.example.com:443/shop/web:1",
        ] {
            let r = ImageRef::parse(foreign).unwrap();
            assert!(!r.is_on(&reg), "{foreign} is not on harbor.example.com");
        }
        assert!(
            ImageRef::parse("HARBOR.example.com/shop/web:1")
                .unwrap()
                .is_on(&reg)
        );
        assert_eq!(
            ImageRef::parse("shop/web:1").unwrap().registry(),
            "docker.io"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "harbor.example.com/Shop/web:1",
            "harbor.example.com/shop/web:1 --x",
            "http://harbor.example.com/shop/web:1",
            "harbor.example.com/shop/web@sha256:12",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} must not parse");
        }
    }
}

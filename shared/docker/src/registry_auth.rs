//! Which registry credentials go with a pull or a push. The Docker Engine sends the
//! credentials it is handed to whatever registry the image names, so handing them over
//! for every image would give Ferry's registry password to any host an event names
//! (a Harbor hook, a forged `image.pushed`, a test plan's image). Every service that
//! pulls or pushes asks here, and only an image on `registry.address` gets them.

use bollard::auth::DockerCredentials;
use ferry_shared::config::{FerryConfig, RegistryConfig};
use ferry_shared::image_ref::ImageRef;

/// The credentials for pulling or pushing `image`: `Some` only when the image's
/// registry host is the configured `registry.address`. An unparsable reference gets
/// none (the engine will refuse it anyway).
pub fn credentials_for(cfg: &FerryConfig, image: &str) -> Option<DockerCredentials> {
    registry_credentials(cfg.registry.as_ref()?, image)
}

/// [`credentials_for`] against one registry configuration.
pub fn registry_credentials(r: &RegistryConfig, image: &str) -> Option<DockerCredentials> {
    let image = ImageRef::parse(image).ok()?;
    if !image.is_on(r) {
        tracing::debug!(
            registry = image.registry(),
            "image not on registry.address: pulled or pushed without credentials"
        );
        return None;
    }
    Some(DockerCredentials {
        username: Some(r.username.clone()),
        password: Some(r.password.expose().clone()),
        serveraddress: Some(r.address.clone()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::secret::Secret;

    #[test]
    fn credentials_go_to_the_configured_registry_only() {
        let r = RegistryConfig {
            address: "127.0.0.1:5000".into(),
            username: "ferry".into(),
            password: Secret::new("pw".into()),
        };
        let ours = registry_credentials(&r, "127.0.0.1:5000/shop/web:1").unwrap();
        assert_eq!(ours.password.as_deref(), Some("pw"));
        assert_eq!(ours.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        for other in [
            "attacker.example/evil:1",
            "127.0.0.1:5001/shop/web:1",
            "shop/web:1",
            "127.0.0.1:5000.attacker.example/shop/web:1",
            "not a reference",
        ] {
            assert!(registry_credentials(&r, other).is_none(), "{other}");
        }
    }
}

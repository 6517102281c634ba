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

/// Why an image named in an event may not be pushed, pulled or deployed for a project.
#[derive(Debug, thiserror::Error)]
pub enum ImageRefused {
    #[error("{0}; an event must name the project's image as the pusher publishes it")]
    Malformed(#[from] ImageRefError),
    #[error("project `{0}` is not configured: add [projects.{0}] or drop the event")]
    UnknownProject(String),
    #[error(
        "image `{image}` is on registry `{registry}`, not on registry.address `{expected}`: \
         only images pushed by Ferry to its registry are pulled or deployed (a forged or \
         mistaken event; nothing was pulled or changed)"
    )]
    ForeignRegistry {
        image: String,
        registry: String,
        expected: String,
    },
    #[error(
        "image `{image}` is repository `{repository}`, not project `{project}`'s image \
         `{expected}` (projects.{project}.image): a run deploys only its own project's image \
         (a forged or mistaken event; nothing was pulled or changed)"
    )]
    OtherRepository {
        image: String,
        repository: String,
        project: String,
        expected: String,
    },
    #[error(
        "image `{0}` is not pinned by a sha256 digest: images from registry.address are \
         pulled and deployed by digest only (`<registry>/<image>:<tag>@sha256:...`)"
    )]
    NoDigest(String),
}

/// Whether `image` may be pushed for `project`: it parses, it lives on
/// `registry.address` (when a registry is configured) and its repository is the
/// project's `image` setting. Events on the bus are not trusted to name the right
/// image: anyone holding a stage's broker user could name any image in them.
pub fn belongs_to(
    cfg: &crate::config::FerryConfig,
    project: &str,
    image: &str,
) -> Result<ImageRef, ImageRefused> {
    let Some(settings) = cfg.projects.get(project) else {
        return Err(ImageRefused::UnknownProject(
            project.chars().take(100).collect(),
        ));
    };
    let parsed = ImageRef::parse(image)?;
    let shown = || image.chars().take(200).collect::<String>();
    if let Some(registry) = &cfg.registry
        && !parsed.is_on(registry)
    {
        return Err(ImageRefused::ForeignRegistry {
            image: shown(),
            registry: parsed.registry().to_owned(),
            expected: registry.address.trim().to_owned(),
        });
    }
    let expected = settings.image.trim();
    let repository = parsed.repository();
    // Docker Hub files one-word names under `library/` (no registry configured: images
    // built into the hosts' own engines, as tests and single-host setups do).
    let same = repository.eq_ignore_ascii_case(expected)
        || (parsed.registry() == "docker.io"
            && repository
                .strip_prefix("library/")
                .is_some_and(|r| r.eq_ignore_ascii_case(expected)));
    if !same {
        return Err(ImageRefused::OtherRepository {
            image: shown(),
            repository: repository.to_owned(),
            project: project.to_owned(),
            expected: expected.to_owned(),
        });
    }
    Ok(parsed)
}

/// Whether `image` may be pulled or deployed for `project`: [`belongs_to`], and, when a
/// registry is configured, pinned by a sha256 digest (a tag can be moved after the
/// tests passed). Without a registry, images live only in the hosts' engines and have
/// no registry digest.
pub fn deployable(
    cfg: &crate::config::FerryConfig,
    project: &str,
    image: &str,
) -> Result<ImageRef, ImageRefused> {
    let parsed = belongs_to(cfg, project, image)?;
    if cfg.registry.is_some() && !parsed.digest().is_some_and(|d| d.starts_with("sha256:")) {
        return Err(ImageRefused::NoDigest(image.chars().take(200).collect()));
    }
    Ok(parsed)
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

    fn project_config(registry: Option<&str>) -> crate::config::FerryConfig {
        let registry = registry
            .map(|a| format!("[registry]\naddress = \"{a}\"\nusername = \"u\"\npassword = \"p\"\n"))
            .unwrap_or_default();
        let text = format!(
            "{registry}[projects.shop]\nimage = \"shop/web\"\nsource = {{ kind = \"svn\", url = \"svn://x/shop\" }}\n[projects.tiny]\nimage = \"web\"\nsource = {{ kind = \"svn\", url = \"svn://x/tiny\" }}\n"
        );
        crate::config::FerryConfig::from_toml_with_env(&text, std::path::Path::new("t.toml"))
            .unwrap()
    }

    #[test]
    fn only_the_projects_own_image_on_the_registry_belongs_to_it() {
        let cfg = project_config(Some("127.0.0.1:5000"));
        let ours = format!("127.0.0.1:5000/shop/web:7@{DIGEST}");
        assert_eq!(
            deployable(&cfg, "shop", &ours).unwrap().repository(),
            "shop/web"
        );
        assert!(belongs_to(&cfg, "shop", "127.0.0.1:5000/shop/web:7").is_ok());
        let refused = |image: &str| deployable(&cfg, "shop", image).unwrap_err();
        assert!(matches!(
            refused(&format!("attacker.example/evil:1@{DIGEST}")),
            ImageRefused::ForeignRegistry { .. }
        ));
        assert!(matches!(
            refused(&format!("attacker.example/shop/web:1@{DIGEST}")),
            ImageRefused::ForeignRegistry { .. }
        ));
        assert!(matches!(
            refused(&format!("127.0.0.1:5000/other/app:1@{DIGEST}")),
            ImageRefused::OtherRepository { .. }
        ));
        assert!(matches!(
            refused(&format!("127.0.0.1:5000/shop/web-evil:1@{DIGEST}")),
            ImageRefused::OtherRepository { .. }
        ));
        assert!(matches!(
            refused("127.0.0.1:5000/shop/web:7"),
            ImageRefused::NoDigest(_)
        ));
        assert!(matches!(
            refused("not an image"),
            ImageRefused::Malformed(_)
        ));
        assert!(matches!(
            deployable(&cfg, "nope", &ours).unwrap_err(),
            ImageRefused::UnknownProject(_)
        ));
        let why = refused(&format!("attacker.example/evil:1@{DIGEST}")).to_string();
        assert!(why.contains("registry.address `127.0.0.1:5000`"), "{why}");
    }

    #[test]
    fn without_a_registry_only_the_repository_is_checked() {
        let cfg = project_config(None);
        assert!(deployable(&cfg, "shop", "shop/web:7").is_ok());
        assert!(deployable(&cfg, "shop", "localhost/shop/web:7").is_ok());
        assert!(deployable(&cfg, "tiny", "web:1").is_ok());
        assert!(deployable(&cfg, "tiny", "localhost/web:1").is_ok());
        assert!(deployable(&cfg, "shop", "evil/app:1").is_err());
        assert!(deployable(&cfg, "tiny", "shop/web:1").is_err());
    }
}

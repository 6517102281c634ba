//! A repository URL may carry credentials (`https://user:token@host/repo.git`): the
//! builder needs them to clone, but the URL is also recorded (the image's
//! `org.opencontainers.image.source` label, `source.changed` events, logs). What is
//! recorded is the URL without its userinfo, and the token is a secret every service
//! scrubs.

use super::{FerryConfig, SourceConfig};

impl SourceConfig {
    /// The URL as it may be recorded: without `user:password@`.
    pub fn public_url(&self) -> String {
        without_userinfo(&self.url)
    }
}

/// `scheme://user:password@host/path` → `scheme://host/path`; other text unchanged.
pub fn without_userinfo(url: &str) -> String {
    match userinfo(url) {
        Some((start, end)) => format!("{}{}", &url[..start], &url[end + 1..]),
        None => url.to_owned(),
    }
}

/// Where the userinfo of `url` is: from after `://` to its `@` (exclusive).
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')?;
    Some((start, start + at))
}

/// The secret part of a URL's userinfo (the password or token; a lone user name that
/// is a token, as GitHub's `https://<token>@github.com/...`, too when long).
fn url_secrets(url: &str) -> Vec<String> {
    let Some((start, end)) = userinfo(url) else {
        return Vec::new();
    };
    let info = &url[start..end];
    match info.split_once(':') {
        Some((_, password)) => vec![password.to_owned()],
        None if info.len() >= 20 => vec![info.to_owned()],
        None => Vec::new(),
    }
}

impl FerryConfig {
    /// Credentials inside the projects' source and config-repo URLs.
    pub(super) fn url_secrets(&self) -> impl Iterator<Item = String> + '_ {
        self.projects.values().flat_map(|p| {
            let config = p.config_repo.iter().map(|r| r.url.as_str());
            std::iter::once(p.source.url.as_str())
                .chain(config)
                .flat_map(url_secrets)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_userinfo_is_dropped_and_its_secret_found() {
        let url = "https://ci-bot:glpat-Xy12_token@git.example.com:8443/shop/web.git";
        assert_eq!(
            without_userinfo(url),
            "https://git.example.com:8443/shop/web.git"
        );
        assert_eq!(url_secrets(url), ["glpat-Xy12_token"]);
        let bare = "https://ghp_0123456789abcdefghij0123@github.com/o/r.git";
        assert_eq!(without_userinfo(bare), "https://github.com/o/r.git");
        assert_eq!(url_secrets(bare), ["ghp_0123456789abcdefghij0123"]);
        // An `@` in the path is not userinfo; no credentials, nothing changes.
        for plain in [
            "https://git.example.com/a@b/web.git",
            "svn://10.0.0.5/shop",
            "git@github.com:o/r.git",
        ] {
            assert_eq!(without_userinfo(plain), plain);
            assert!(url_secrets(plain).is_empty());
        }
    }
}

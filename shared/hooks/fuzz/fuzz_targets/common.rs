//! Shared by the parser targets: the input is `<header lines>\0<body>`; the first
//! byte says whether a secret is checked. Parsing must never panic, and a parse that
//! succeeds must also survive matching against a configuration.

use http::{HeaderMap, HeaderName, HeaderValue};
use ferry_shared::config::FerryConfig;
use ferry_shared::secret::Secret;
use ferry_hooks::trigger::Source;
use std::sync::OnceLock;

fn config() -> &'static FerryConfig {
    static CFG: OnceLock<FerryConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        let text = r#"
            [projects.shop]
            image = "shop/web"
            source = { kind = "git", url = "https://example.com/a/b.git", repository = "a/b", branches = ["main", "release/*"], tags = ["v*"], paths = ["app/", "*.php"] }
            [projects.svn]
            image = "test-webhook/debian"
            source = { kind = "svn", url = "svn://127.0.0.1/repo", path = "/trunk/shop" }
        "#;
        FerryConfig::from_toml_with_env(text, std::path::Path::new("fuzz.toml")).expect("fuzz config")
    })
}

pub fn run(source: Source, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (head, body) = rest.split_at(split);
    let body = body.get(1..).unwrap_or(&[]);
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..])) {
            headers.append(n, v);
        }
    }
    let secret = Secret::new("fuzz-secret-123".to_owned());
    let secret = (flags & 1 == 1).then_some(&secret);
    if let Ok(parsed) = ferry_hooks::sources::parse(source, &headers, body, secret) {
        let _ = ferry_hooks::plan::plan(config(), parsed, &ferry_hooks::plan::NoReleases);
    }
}

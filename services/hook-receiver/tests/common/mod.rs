//! Shared by the hook-receiver's tests: a configuration with one project per kind of
//! source, a receiver started in-process, and a way to post to it.

#![allow(dead_code)]

pub mod dashboard;

use ferry_shared::config::FerryConfig;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use hook_receiver::HookReceiver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub const GITLAB_TOKEN: &str = "gitlab-token-1";
pub const GITHUB_SECRET: &str = "gh-secret-123";
pub const GITEA_SECRET: &str = "gitea-secret-1";
pub const SVN_TOKEN: &str = "svn-token-123";
pub const HARBOR_AUTH: &str = "Basic aGFyYm9yOmhvb2s=";
pub const MANUAL_TOKEN: &str = "manual-token-1";

/// Projects matching the fixtures: `shop` (GitLab mike/diaspora), `hello`, `hello-docs`
/// and `hello-src` (GitHub Codertocat/Hello-World, the last two with path filters),
/// `webhooks` (Gitea, branch develop), `debian` (Harbor image), `svnshop` (SVN).
pub fn config(amqp_url: &str, namespace: &str, svn_url: &str, extra: &str) -> Arc<FerryConfig> {
    parse(&config_text(amqp_url, namespace, svn_url, extra))
}

pub fn parse(text: &str) -> Arc<FerryConfig> {
    Arc::new(FerryConfig::from_toml_with_env(text, Path::new("test.toml")).unwrap())
}

/// The text of [`config`], for tests that change a key in it.
pub fn config_text(amqp_url: &str, namespace: &str, svn_url: &str, extra: &str) -> String {
    format!(
        r#"
        [broker]
        url = "{amqp_url}"
        namespace = "{namespace}"
        publish_timeout_ms = 2000
        connect_timeout_ms = 1000
        [hooks]
        gitlab_token = "{GITLAB_TOKEN}"
        github_secret = "{GITHUB_SECRET}"
        gitea_secret = "{GITEA_SECRET}"
        svn_token = "{SVN_TOKEN}"
        harbor_auth = "{HARBOR_AUTH}"
        manual_token = "{MANUAL_TOKEN}"
        max_body_bytes = 65536
        [services.hook_receiver]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [registry]
        address = "hub.harbor.com"
        username = "robot$ferry"
        password = "registry-password-1"
        [environments.staging]
        [projects.shop]
        image = "shop/web"
        environments = ["staging"]
        source = {{ kind = "git", url = "https://gitlab.example.com/x.git", repository = "mike/diaspora", branches = ["master"], tags = ["v*"] }}
        [projects.hello]
        image = "hello/web"
        source = {{ kind = "git", url = "https://github.com/Codertocat/Hello-World.git" }}
        [projects.hello-docs]
        image = "hello/docs"
        source = {{ kind = "git", url = "https://example.com/none.git", repository = "Codertocat/Hello-World", paths = ["README.md"] }}
        [projects.hello-src]
        image = "hello/src"
        source = {{ kind = "git", url = "https://example.com/none.git", repository = "codertocat/hello-world", paths = ["src/"] }}
        [projects.webhooks]
        image = "gitea/webhooks"
        source = {{ kind = "git", url = "http://localhost:3000/gitea/webhooks.git", branches = ["develop"] }}
        [projects.debian]
        image = "test-webhook/debian"
        source = {{ kind = "git", url = "https://example.com/debian.git" }}
        [projects.svnshop]
        image = "svn/shop"
        environments = ["staging"]
        source = {{ kind = "svn", url = "{svn_url}", path = "/trunk/shop" }}
        {extra}
        "#
    )
}

pub struct Receiver {
    pub addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

pub async fn start(cfg: Arc<FerryConfig>) -> Receiver {
    let r = HookReceiver::bind(cfg).await.unwrap();
    let addr = r.addr;
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(async move { r.run_until_stopped(stop.wait_owned()).await.unwrap() });
    Receiver {
        addr,
        trigger,
        task,
    }
}

impl Receiver {
    pub async fn stop(self) {
        self.trigger.trigger();
        self.task.await.unwrap();
    }

    /// POST to `/hooks/<source>`; the reply's status and JSON body.
    pub async fn post(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let (status, text) = ferry_testkit::http_request(
            self.addr,
            "POST",
            &format!("/hooks/{source}"),
            headers,
            body,
        )
        .await
        .unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }
}

/// A real webhook payload, kept with the parsers in ferry-hooks.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/hooks/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn github_signature(body: &[u8]) -> String {
    format!(
        "sha256={}",
        ferry_hooks::verify::hmac_sha256_hex(GITHUB_SECRET, body)
    )
}

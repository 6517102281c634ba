//! `[projects.<name>]`: what is built (source, config repo, Dockerfile), how it runs
//! on `docker` target hosts, where it goes and what is tested there.

use super::FerryConfig;
use super::environments::{Target, distinct_pairs};
use super::maybe_secret::MaybeSecret;
use super::problem::{Problem, Report};
use super::source::{SourceConfig, SourceFile};
use crate::scrub::{KeyPattern, KeyRules};
use crate::test_plan::TestPlan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct ProjectConfig {
    pub source: SourceConfig,
    /// Image name inside the registry, e.g. `shop/web`.
    pub image: String,
    /// Environments in promotion order, e.g. `["staging", "production"]`.
    pub environments: Vec<String>,
    /// The ops-owned repository overlaid on the code before the build.
    pub config_repo: Option<ConfigRepo>,
    /// Dockerfile path inside the build context.
    pub dockerfile: String,
    /// How the image runs on `docker` target hosts.
    pub container: ContainerConfig,
    /// What the tester checks after a deploy.
    pub tests: Option<TestPlan>,
}

/// The service's container on plain Docker hosts. Containers use the host's network.
/// Two ports make the blue/green slots of a rolling update: the new container starts
/// on the slot the running one does not use (it gets it as `PORT`), is health-checked
/// there, and only then is the old one stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    pub ports: Vec<u16>,
    /// `KEY = "value"`, or `KEY = { secret = "value" }` for a value never shown.
    pub env: BTreeMap<String, MaybeSecret>,
    /// Overrides the image's CMD; `{port}` is replaced by the slot's port.
    pub command: Vec<String>,
    /// Path answered with 2xx once the new container is ready.
    pub health_path: String,
    /// Instead of the HTTP check: a command run inside the new container (`docker
    /// exec`) that exits 0 once it is ready; `{port}` is replaced by the slot's port.
    pub health_command: Vec<String>,
    pub health_timeout_secs: u64,
    /// Run Docker's init (tini) as PID 1, so the application gets SIGTERM on a stop
    /// (a process that is PID 1 itself ignores it) and zombies are reaped. Turn off
    /// for an image with its own init.
    pub init: bool,
    /// How long a retired container may take to stop after SIGTERM before SIGKILL.
    pub stop_timeout_secs: u64,
    /// `host` (default: the app listens on the slot's port itself, given as `PORT`), or
    /// the name of a Docker network to join: then the app listens on `container_port`
    /// and Docker publishes it on the slot's port.
    pub network: String,
    /// The app's port inside its container, for a `network` other than `host`.
    pub container_port: Option<u16>,
    /// Where published ports listen on the host (`network` other than `host`).
    pub publish_address: String,
    /// Containers per host (`docker` target) where nothing runs yet; after that a
    /// deploy keeps the number each host runs, and `ferry scale` changes it. Each
    /// replica has its own pair of blue/green `ports` (replica i: `ports[2i]`,
    /// `ports[2i+1]`): more pairs than replicas leave room to scale up. A host is
    /// updated one replica at a time.
    pub replicas: u32,
    /// Environment → the stable port the host's proxy serves the project on there
    /// (`docker` target): deploys then switch through the proxy and drain the old
    /// release (see `[proxy]`).
    pub proxy_ports: BTreeMap<String, u16>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            ports: vec![8080, 8081],
            env: BTreeMap::new(),
            command: Vec::new(),
            health_path: "/healthz".into(),
            health_command: Vec::new(),
            health_timeout_secs: 30,
            init: true,
            stop_timeout_secs: 10,
            network: "host".into(),
            container_port: None,
            publish_address: "0.0.0.0".into(),
            replicas: 1,
            proxy_ports: BTreeMap::new(),
        }
    }
}

/// A git repository (e.g. on GitLab) with the files developers must not see: the
/// production `.env`, nginx configuration, the Dockerfile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRepo {
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Folder inside the repository holding this project's files.
    #[serde(default)]
    pub path: Option<String>,
    /// File in the config repo (relative to `path`) → place in the build context,
    /// e.g. `"env/production.env" = ".env"`. A `Dockerfile` at the top of `path` is
    /// used instead of the code's own without being listed.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Files holding secrets (`KEY=value` lines, or JSON, YAML or PHP by their
    /// extension): their secrets (see `scrub::rule`) are scrubbed from build logs, test
    /// reports and messages. By default every mapped file whose name contains `env`.
    #[serde(default)]
    pub secret_files: Option<Vec<String>>,
    /// Keys (case-insensitive, `*` for any text) whose values in the secret files are
    /// secrets whatever they look like.
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// Keys whose values are never secrets, even when their name or look says so.
    #[serde(default)]
    pub plain_keys: Vec<String>,
}

fn default_branch() -> String {
    "main".into()
}

impl ProjectConfig {
    /// What is wrong with the project `name`, within the whole configuration `cfg`.
    pub(super) fn check(&self, name: &str, cfg: &FerryConfig, out: &mut Vec<Problem>) {
        let at = format!("projects.{name}");
        self.source.check(&format!("{at}.source"), out);
        if let Some(c) = &self.config_repo {
            c.check(&at, out);
        }
        if self.image.is_empty() {
            out.bad(format!("{at}.image"), "must not be empty");
        }
        for env in self
            .environments
            .iter()
            .filter(|e| !cfg.environments.contains_key(*e))
        {
            out.bad(
                format!("{at}.environments"),
                format!("environment `{env}` is not defined in [environments]"),
            );
        }
        for env in &self.environments {
            if let Some(Target::Rancher(r)) = cfg.environments.get(env).map(|e| &e.target) {
                r.check_names(name, env, out);
            }
        }
        self.check_container(&at, cfg, out);
        if let Some(plan) = &self.tests {
            self.check_tests(plan, &at, cfg, out);
        }
    }

    /// The container's network and ports, with each environment's `ports` override.
    fn check_container(&self, at: &str, cfg: &FerryConfig, out: &mut Vec<Problem>) {
        let c = &self.container;
        if c.network != "host" && c.container_port.is_none() {
            out.bad(
                format!("{at}.container.container_port"),
                format!(
                    "network `{}` needs the port the app listens on inside its container",
                    c.network
                ),
            );
        }
        let replicas = c.replicas as usize;
        if replicas == 0 {
            out.bad(format!("{at}.container.replicas"), "must be at least 1");
            return;
        }
        let overrides = self.environments.iter().filter_map(|e| {
            let ports = cfg.environments.get(e)?.ports.as_ref()?;
            Some((format!("environments.{e}.ports"), ports))
        });
        for (key, ports) in
            std::iter::once((format!("{at}.container.ports"), &c.ports)).chain(overrides)
        {
            // More pairs than replicas are the room `ferry scale` has to grow into.
            if ports.len() < 2 * replicas || !distinct_pairs(ports) {
                out.bad(
                    key,
                    format!(
                        "{at} runs {replicas} replica(s): that needs at least {} different ports (two per replica), not {ports:?}",
                        2 * replicas
                    ),
                );
            }
        }
    }

    fn check_tests(&self, plan: &TestPlan, at: &str, cfg: &FerryConfig, out: &mut Vec<Problem>) {
        // A `docker` target has a default base URL: the container the run started.
        let has_base = |e: &str| {
            cfg.environments
                .get(e)
                .is_some_and(|c| c.base_url.is_some() || matches!(c.target, Target::Docker))
        };
        for (key, message) in crate::test_plan::problems(plan, &self.environments, has_base) {
            out.bad(format!("{at}.tests.{key}"), message);
        }
        if let Some(host) = plan.container.as_ref().and_then(|c| c.host.as_ref())
            && !cfg.docker_hosts.contains_key(host)
        {
            out.bad(
                format!("{at}.tests.container.host"),
                format!("host `{host}` is not defined in [docker_hosts]"),
            );
        }
    }
}

impl ConfigRepo {
    /// Mapped files stay inside both repositories.
    fn check(&self, at: &str, out: &mut Vec<Problem>) {
        let escapes = |p: &String| p.starts_with('/') || p.split('/').any(|seg| seg == "..");
        for (from, to) in &self.files {
            if escapes(from) || escapes(to) {
                out.bad(
                    format!("{at}.config_repo.files"),
                    format!("`{from}` = `{to}` must be relative paths inside the repositories"),
                );
            }
        }
        for (list, keys) in [
            ("secret_keys", &self.secret_keys),
            ("plain_keys", &self.plain_keys),
        ] {
            for k in keys.iter().filter(|k| KeyPattern::parse(k).is_none()) {
                out.bad(
                    format!("{at}.config_repo.{list}"),
                    format!(
                        "`{k}` is not a key: use letters, digits, `_ . -`, and `*` for any text"
                    ),
                );
            }
        }
        for k in self
            .secret_keys
            .iter()
            .filter(|k| self.plain_keys.contains(k))
        {
            out.bad(
                format!("{at}.config_repo.plain_keys"),
                format!("`{k}` is also in secret_keys: a key is either a secret or not"),
            );
        }
    }

    /// The project's additions to the secret rule (patterns that do not parse are
    /// reported by the config check and left out here).
    pub fn key_rules(&self) -> KeyRules {
        let parse = |keys: &[String]| keys.iter().filter_map(|k| KeyPattern::parse(k)).collect();
        KeyRules {
            secret: parse(&self.secret_keys),
            plain: parse(&self.plain_keys),
        }
    }
}

/// A project as written: only its `source` differs from [`ProjectConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectFile {
    source: SourceFile,
    image: String,
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default)]
    config_repo: Option<ConfigRepo>,
    #[serde(default = "default_dockerfile")]
    dockerfile: String,
    #[serde(default)]
    container: ContainerConfig,
    #[serde(default)]
    tests: Option<TestPlan>,
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

impl ProjectFile {
    pub(super) fn parse(self, name: &str, out: &mut Vec<Problem>) -> ProjectConfig {
        ProjectConfig {
            source: self.source.parse(&format!("projects.{name}.source"), out),
            image: self.image,
            environments: self.environments,
            config_repo: self.config_repo,
            dockerfile: self.dockerfile,
            container: self.container,
            tests: self.tests,
        }
    }
}

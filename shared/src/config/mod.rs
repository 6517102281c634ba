//! Ferry's configuration: one TOML file for the whole installation (`FERRY_CONFIG` picks
//! the path) plus `FERRY__SECTION__KEY` environment overrides, validated at start-up.
//!
//! Unknown keys are errors: a misspelt key silently falling back to a default is the
//! kind of surprise an ops tool must not have. Every validation problem is reported
//! at once, each naming its key, so a bad file is fixed in one go.

mod maybe_secret;
mod source_url;

pub use maybe_secret::MaybeSecret;
pub use source_url::without_userinfo;

use crate::secret::Secret;

mod network;
pub use network::ContainerNetwork;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod broker_users;
pub mod operators;
pub use operators::OperatorConfig;
mod door;
mod source_checks;
pub use door::{
    DEFAULT_AUTH_FAILURES_PER_MINUTE, DEFAULT_BODY_TIMEOUT_SECS, DEFAULT_HEADER_TIMEOUT_SECS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, parse_ip_or_cidr,
    tls_server_config,
};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/ferry/ferry.toml";
/// EX_USAGE from sysexits.h: what a service exits with on bad configuration.
pub const EXIT_BAD_CONFIG: i32 = 64;

/// Keys whose `FERRY__...` override is a comma-separated list.
const LIST_KEYS: &[&str] = &["broker.retry_delays_ms", "notify.allow_hosts"];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FerryConfig {
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub broker: BrokerConfig,
    /// Per-service settings, keyed by service name with `_` for `-`
    /// (`hook_receiver`, `rancher_updater`) so environment overrides can name them.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub build: BuildConfig,
    #[serde(default)]
    pub pull: PullConfig,
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    #[serde(default)]
    pub docker_hosts: BTreeMap<String, DockerHostConfig>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectConfig>,
    /// People allowed to use the operator API (`ferry approve`, `reject`, `rollback`,
    /// `deploy`, `runs`), each with a bearer token. The name is what events record.
    #[serde(default)]
    pub operators: BTreeMap<String, OperatorConfig>,
    /// Notifications: channels, routes, the author map (see `notify_config`).
    #[serde(default)]
    pub notify: crate::notify_config::NotifyConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human-readable) or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `info,lapin=warn`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info,lapin=warn".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// `amqp://user:password@host:port/vhost` (or `amqps://`).
    pub url: Secret<String>,
    /// Prefix of every exchange and queue, so several installations (or tests) can
    /// share one broker.
    pub namespace: String,
    pub heartbeat_secs: u16,
    pub connect_timeout_ms: u64,
    /// Upper bound for one publish, from sending to the broker's confirm.
    pub publish_timeout_ms: u64,
    /// Longest wait between two reconnection attempts.
    pub reconnect_max_delay_ms: u64,
    /// Publishing channels (each on its own connection) shared by a process.
    pub publisher_channels: usize,
    /// Delay before each retry of a handler that asked to retry later; the last one
    /// repeats if `max_attempts` asks for more retries than there are delays.
    pub retry_delays_ms: Vec<u64>,
    /// How many times a handler may run for one message (first try included) before
    /// the message is parked and the run fails.
    pub max_attempts: u32,
    /// How many times a message may come back without an outcome (the consumer died
    /// or lost its channel mid-handler) before it is parked as poison.
    pub max_redeliveries: u32,
    /// The broker's `consumer_timeout` (RabbitMQ default 30 min). Handlers must finish
    /// well before it: see "Long work" in the README.
    pub consumer_timeout_secs: u64,
    /// How long the run history (a RabbitMQ stream of every event, read by
    /// `ferry runs`) keeps events, in RabbitMQ's `x-max-age` form: `7D`, `12h`, `30m`.
    pub history_max_age: String,
    /// Size bound of the run history stream.
    pub history_max_bytes: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            namespace: "ferry".into(),
            heartbeat_secs: 10,
            connect_timeout_ms: 5_000,
            publish_timeout_ms: 5_000,
            reconnect_max_delay_ms: 2_000,
            publisher_channels: 2,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000],
            max_attempts: 5,
            max_redeliveries: 5,
            consumer_timeout_secs: 1_800,
            history_max_age: "7D".into(),
            history_max_bytes: 1_000_000_000,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub admin_listen: Option<SocketAddr>,
    /// Address of the public HTTP endpoint (hook-receiver).
    pub listen: Option<SocketAddr>,
    /// Deliveries handled at once by one process.
    pub prefetch: Option<u16>,
    /// Hard limit of one handler run; must stay below `broker.consumer_timeout_secs`.
    pub handler_timeout_secs: Option<u64>,
    /// How long SIGTERM waits for in-flight handlers before requeueing them.
    pub shutdown_grace_secs: Option<u64>,
    /// This service's own broker user (`amqp://ferry-builder:...@host/vhost`), instead
    /// of `broker.url`'s: see `ferry broker users`.
    pub broker_url: Option<Secret<String>>,
    /// hook-receiver: serve HTTPS with this PEM certificate chain (and `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// hook-receiver: the PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// hook-receiver: serve the operator API (`/api`) only here, not on `listen`.
    pub api_listen: Option<SocketAddr>,
}

/// The hook-receiver's sources. A source without its secret is disabled: its
/// endpoint answers 404 and publishes nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// A delivery seen again within this window returns the original run ids.
    pub dedup_window_secs: u64,
    /// Compared with `X-Gitlab-Token`.
    pub gitlab_token: Option<Secret<String>>,
    /// Key of GitHub's `X-Hub-Signature-256` HMAC.
    pub github_secret: Option<Secret<String>>,
    /// Key of Gitea's `X-Gitea-Signature` HMAC.
    pub gitea_secret: Option<Secret<String>>,
    /// Bearer token of the SVN post-commit script.
    pub svn_token: Option<Secret<String>>,
    /// The whole `Authorization` header Harbor sends ("Auth Header" in its webhook policy).
    pub harbor_auth: Option<Secret<String>>,
    /// Bearer token for manual triggers (`POST /hooks/manual`).
    pub manual_token: Option<Secret<String>>,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections one client address (IPv6: its /64) may have open; more are
    /// answered 503 and closed (0: no limit). Unset: 64, or `max_connections` if lower;
    /// read it with `connections_per_address()`.
    pub max_connections_per_address: Option<usize>,
    /// Reverse proxies (addresses or CIDR blocks) whose connections are not capped per
    /// address and whose `X-Forwarded-For` names the client for the failed-auth limit.
    pub trusted_proxies: Vec<String>,
    /// A request's headers (and a TLS handshake) must arrive within this time.
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this time (408 after).
    pub body_timeout_secs: u64,
    /// Failed authentications one address may make per minute before 429 (0: no limit).
    pub auth_failures_per_minute: u32,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            dedup_window_secs: 3600,
            gitlab_token: None,
            github_secret: None,
            gitea_secret: None,
            svn_token: None,
            harbor_auth: None,
            manual_token: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: None,
            trusted_proxies: Vec::new(),
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
        }
    }
}

/// Where and how images are built (builder) and pushed (pusher).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// The Docker Engine the builder builds on and the pusher pushes from: the image
    /// must be on the daemon that pushes it, so both services use this one.
    pub docker_host: String,
    /// Per-project working copies (code and config repo), reused between builds.
    pub work_dir: std::path::PathBuf,
    /// Build logs, one folder per run: `<log_dir>/<run_id>/build.log`.
    pub log_dir: std::path::PathBuf,
    /// Build logs are cut to this many bytes (the end is kept).
    pub max_log_bytes: usize,
    /// Deadline of one checkout, build or push.
    pub timeout_secs: u64,
    /// Subversion account of the builder (read-only is enough).
    pub svn_username: Option<String>,
    pub svn_password: Option<Secret<String>>,
    /// The network of `RUN` steps: `default` (isolated), `none`, `host` (opt-in) or a
    /// named engine network.
    pub network: ContainerNetwork,
    /// PEM of the CA(s) that signed an https:// SVN server's certificate (see `source_checks`).
    pub svn_ca_file: Option<std::path::PathBuf>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            docker_host: "unix:///var/run/docker.sock".into(),
            work_dir: "/var/lib/ferry/work".into(),
            log_dir: "/var/lib/ferry/logs".into(),
            max_log_bytes: 1024 * 1024,
            timeout_secs: 1200,
            svn_username: None,
            svn_password: None,
            network: ContainerNetwork::default(),
            svn_ca_file: None,
        }
    }
}

/// How the puller pre-pulls images onto the hosts of an environment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullConfig {
    /// Hosts pulled at the same time (per image).
    pub concurrency: usize,
    /// Attempts per host within one run of the handler, before the host counts as failed.
    pub attempts_per_host: u32,
    /// Deadline of one host's pull in one run of the handler, all attempts included
    /// (below the puller's handler timeout, so the handler always answers).
    pub timeout_secs: u64,
    /// `all`: an environment is ready only when every host has the image (default).
    /// `any`: ready when at least one has it (the others are named in the event).
    pub policy: String,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            attempts_per_host: 3,
            timeout_secs: 600,
            policy: "all".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host:port` of the registry, e.g. `harbor.example.com` or `127.0.0.1:5000`.
    pub address: String,
    pub username: String,
    pub password: Secret<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHostConfig {
    /// `unix:///var/run/docker.sock` or `tcp://host:2375` (plain TCP: keep it on a
    /// private network; TLS and `ssh://` are not supported yet).
    pub url: String,
    /// Where the host's containers answer (health checks, the tester's `{host}`).
    /// Default: the host of a `tcp://` URL, else 127.0.0.1.
    #[serde(default)]
    pub address: Option<String>,
    /// For a `tcp://` host behind TLS (dockerd `--tlsverify`): a directory with
    /// `ca.pem`, `cert.pem` and `key.pem`, as the Docker CLI's `DOCKER_CERT_PATH`.
    #[serde(default)]
    pub tls_dir: Option<std::path::PathBuf>,
    /// For an `ssh://user@host[:port]` host: the private key to log in with (default:
    /// the ssh client's own configuration). The remote account runs
    /// `docker system dial-stdio`, so it needs the docker CLI and access to the engine.
    #[serde(default)]
    pub ssh_key: Option<std::path::PathBuf>,
}

impl DockerHostConfig {
    pub fn address(&self) -> String {
        if let Some(a) = &self.address {
            return a.clone();
        }
        if let Some(rest) = self.url.strip_prefix("ssh://") {
            let host = rest.rsplit('@').next().unwrap_or(rest);
            return host.split(':').next().unwrap_or("127.0.0.1").to_owned();
        }
        self.url
            .strip_prefix("tcp://")
            .or_else(|| self.url.strip_prefix("http://"))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or("127.0.0.1")
            .to_owned()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// `docker` or `rancher`.
    #[serde(default = "default_target")]
    pub target: String,
    /// Names from `[docker_hosts]`: where the image is pre-pulled (and run, for `docker`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Base URL the tester checks after a deploy. `{host}` and `{port}` are replaced
    /// by the address and port of the container the run started on the environment's
    /// first host (`docker` target), which is also the default when this is unset.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Overrides the project's `container.ports` here (`docker` target), e.g. when
    /// two environments' hosts share one machine's network.
    #[serde(default)]
    pub ports: Option<Vec<u16>>,
    /// `false` holds a deploy into this environment until an operator approves it
    /// (the same as `approval = "manual"`).
    #[serde(default = "default_true")]
    pub auto_confirm: bool,
    /// `auto` or `manual`: whether a run that passed the previous environment's tests
    /// waits for `ferry approve` before it is deployed here.
    #[serde(default = "default_approval")]
    pub approval: String,
    /// How long a held run waits for an answer before it ends as expired.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_secs: u64,
    /// For `target = "rancher"`: the Rancher 1.6 service to upgrade.
    #[serde(default)]
    pub rancher: Option<RancherConfig>,
    /// Whoever started a run (the operator of `ferry deploy`/`rollback`, or the commit's
    /// author, see `operators.<name>.authors`) cannot approve it into this environment.
    #[serde(default)]
    pub require_other_approver: bool,
}

/// A service in Rancher 1.6 (Cattle), reached through the `v2-beta` API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RancherConfig {
    /// e.g. `https://rancher.example.com` (the API is under `/v2-beta`).
    pub url: String,
    /// Environment (project) id, e.g. `1a5`.
    pub project_id: String,
    /// Service id, e.g. `1s12`.
    pub service_id: String,
    pub access_key: String,
    pub secret_key: Secret<String>,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    #[serde(default = "default_interval")]
    pub interval_millis: u64,
    #[serde(default)]
    pub start_first: bool,
    /// Longest wait for a state change (upgrading → upgraded, finishing, rolling back).
    #[serde(default = "default_rancher_timeout")]
    pub timeout_secs: u64,
    /// What to do with a service an earlier run left `upgraded`: `finish` or `rollback`.
    #[serde(default = "default_leftover")]
    pub on_leftover_upgraded: String,
    /// Pre-pull also on the environment's active Rancher hosts (the hosts API), not only
    /// on the listed `hosts`.
    #[serde(default)]
    pub discover_hosts: bool,
    /// How a discovered host's Docker engine is reached; `{address}` is its agent IP.
    #[serde(default = "default_host_url")]
    pub host_url: String,
    /// TLS client certificates for discovered hosts (`ca.pem`, `cert.pem`, `key.pem`).
    #[serde(default)]
    pub host_tls_dir: Option<std::path::PathBuf>,
    /// PEM of the CA that signed the Rancher server's certificate, trusted besides the
    /// public roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_host_url() -> String {
    "tcp://{address}:2376".into()
}

fn default_batch() -> u32 {
    1
}

fn default_interval() -> u64 {
    2000
}

fn default_rancher_timeout() -> u64 {
    300
}

fn default_leftover() -> String {
    "finish".into()
}

fn default_approval() -> String {
    "auto".into()
}

fn default_approval_timeout() -> u64 {
    24 * 3600
}

impl EnvironmentConfig {
    /// Whether promotion into this environment waits for an operator.
    pub fn needs_approval(&self) -> bool {
        self.approval == "manual" || !self.auto_confirm
    }
}

fn default_target() -> String {
    "docker".into()
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub source: SourceConfig,
    /// Image name inside the registry, e.g. `shop/web`.
    pub image: String,
    /// Environments in promotion order, e.g. `["staging", "production"]`.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The ops-owned repository overlaid on the code before the build.
    #[serde(default)]
    pub config_repo: Option<ConfigRepo>,
    /// Dockerfile path inside the build context.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// How the image runs on `docker` target hosts.
    #[serde(default)]
    pub container: ContainerConfig,
    /// What the tester checks after a deploy.
    #[serde(default)]
    pub tests: Option<crate::test_plan::TestPlan>,
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
    /// Containers per host (`docker` target). Each replica has its own pair of
    /// blue/green `ports` (replica i: `ports[2i]`, `ports[2i+1]`), and a host is
    /// updated one replica at a time.
    pub replicas: u32,
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
        }
    }
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
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
    /// Files whose values are secrets (`KEY=value` lines, or JSON, YAML or PHP by their
    /// extension): scrubbed from build logs and test reports. By default
    /// every mapped file whose name contains `env`.
    #[serde(default)]
    pub secret_files: Option<Vec<String>>,
}

fn default_branch() -> String {
    "main".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `svn` or `git`.
    pub kind: String,
    /// Checkout URL: the SVN repository root, or the git clone URL.
    pub url: String,
    /// How webhooks name the repository: GitLab's `path_with_namespace`, GitHub's and
    /// Gitea's `full_name` (e.g. `shop/web`). Hooks also match on `url`.
    #[serde(default)]
    pub repository: Option<String>,
    /// SVN repository UUID (`svnadmin info`), matched besides `url`.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Path prefix inside an SVN repository, e.g. `/trunk/shop`: only commits touching
    /// it start a run.
    #[serde(default)]
    pub path: Option<String>,
    /// Branches that trigger a run (git): exact names or `*` globs such as `release/*`;
    /// empty means the repository's default branch.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Tags that trigger a run (`*` globs); empty means tag pushes are ignored.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Changed-path filters (prefixes or `*` globs): a push touching none of them is
    /// ignored. Empty means every path counts. Several projects can share a repository.
    #[serde(default)]
    pub paths: Vec<String>,
    /// SVN: fetch `svn:externals` (other repositories' code) into the build; off by default.
    #[serde(default)]
    pub allow_externals: bool,
}

/// One thing wrong with the configuration, named by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read the configuration file {path}: {source}; set FERRY_CONFIG to the path of ferry.toml"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: config::ConfigError,
    },
    #[error("configuration {path} has {} problem(s):\n{}", .problems.len(), list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The path named by `FERRY_CONFIG`, or the default.
pub fn config_path() -> PathBuf {
    std::env::var_os("FERRY_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

impl FerryConfig {
    /// Read `path`, apply `FERRY__SECTION__KEY` overrides from the environment, validate.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_with_env(&text, path)
    }

    pub fn from_toml_with_env(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse = |source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        // Overrides are set as the strings they are: `config`'s own environment source
        // would turn `007007` into the number 7007 on the way into a string field (a
        // password or token). Numbers and booleans are read from the strings when the
        // configuration is deserialized.
        for (name, value) in std::env::vars() {
            let Some(rest) = name.strip_prefix("FERRY__") else {
                continue;
            };
            let key = rest.to_lowercase().replace("__", ".");
            builder = if LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> = value.split(',').map(|v| v.trim().to_owned()).collect();
                builder.set_override(key, items)
            } else {
                builder.set_override(key, value)
            }
            .map_err(parse)?;
        }
        let cfg: FerryConfig = builder
            .build()
            .map_err(parse)?
            .try_deserialize()
            .map_err(parse)?;
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// The settings of one service (by its binary name), defaults filled in.
    pub fn service(&self, name: &str) -> ServiceConfig {
        self.services
            .get(&service_key(name))
            .cloned()
            .unwrap_or_default()
    }

    /// Every problem, not just the first.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |key: String, message: String| p.push(Problem { key, message });

        if !["text", "json"].contains(&self.log.format.as_str()) {
            bad(
                "log.format".into(),
                format!(
                    "`{}` is not a log format; use `text` or `json`",
                    self.log.format
                ),
            );
        }
        let b = &self.broker;
        if let Err(e) = b.url.expose().parse::<lapin::uri::AMQPUri>() {
            bad(
                "broker.url".into(),
                format!("not an AMQP URL ({e}); expected amqp://user:password@host:5672/%2f"),
            );
        }
        if b.namespace.is_empty()
            || !b
                .namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            bad(
                "broker.namespace".into(),
                format!(
                    "`{}` must be non-empty, lowercase letters, digits, `-` or `_`",
                    b.namespace
                ),
            );
        }
        for (key, value) in [
            ("broker.connect_timeout_ms", b.connect_timeout_ms),
            ("broker.publish_timeout_ms", b.publish_timeout_ms),
            ("broker.reconnect_max_delay_ms", b.reconnect_max_delay_ms),
            ("broker.consumer_timeout_secs", b.consumer_timeout_secs),
            ("broker.max_attempts", u64::from(b.max_attempts)),
            ("broker.publisher_channels", b.publisher_channels as u64),
        ] {
            if value == 0 {
                bad(key.into(), "must be greater than 0".into());
            }
        }
        if b.retry_delays_ms.is_empty() || b.retry_delays_ms.contains(&0) {
            bad(
                "broker.retry_delays_ms".into(),
                "needs at least one delay, each greater than 0".into(),
            );
        }
        for (name, s) in &self.services {
            if !crate::SERVICES.iter().any(|svc| service_key(svc) == *name) {
                bad(
                    format!("services.{name}"),
                    format!(
                        "no such service; known: {}",
                        crate::SERVICES.map(service_key).join(", ")
                    ),
                );
            }
            if s.prefetch == Some(0) {
                bad(
                    format!("services.{name}.prefetch"),
                    "must be at least 1".into(),
                );
            }
            if let Some(t) = s.handler_timeout_secs
                && (t == 0 || t >= b.consumer_timeout_secs)
            {
                bad(
                    format!("services.{name}.handler_timeout_secs"),
                    format!(
                        "{t} s must be between 1 and broker.consumer_timeout_secs ({} s); \
                             for longer work raise RabbitMQ's consumer_timeout and broker.consumer_timeout_secs together",
                        b.consumer_timeout_secs
                    ),
                );
            }
        }
        if self.hooks.max_body_bytes < 1024 {
            bad(
                "hooks.max_body_bytes".into(),
                "must be at least 1024".into(),
            );
        }
        for (key, secret) in [
            ("gitlab_token", &self.hooks.gitlab_token),
            ("github_secret", &self.hooks.github_secret),
            ("gitea_secret", &self.hooks.gitea_secret),
            ("svn_token", &self.hooks.svn_token),
            ("harbor_auth", &self.hooks.harbor_auth),
            ("manual_token", &self.hooks.manual_token),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
                bad(
                    format!("hooks.{key}"),
                    "must be at least 8 characters (or left out to disable the source)".into(),
                );
            }
        }
        if !["all", "any"].contains(&self.pull.policy.as_str()) {
            bad(
                "pull.policy".into(),
                format!("`{}` is not a policy; use `all` or `any`", self.pull.policy),
            );
        }
        if self.pull.concurrency == 0 || self.pull.attempts_per_host == 0 {
            bad(
                "pull".into(),
                "concurrency and attempts_per_host must be at least 1".into(),
            );
        }
        if self.build.max_log_bytes < 4096 {
            bad("build.max_log_bytes".into(), "must be at least 4096".into());
        }
        if !["unix://", "tcp://", "http://"]
            .iter()
            .any(|p| self.build.docker_host.starts_with(p))
        {
            bad(
                "build.docker_host".into(),
                format!(
                    "`{}` must start with unix://, tcp:// or http://",
                    self.build.docker_host
                ),
            );
        }
        if let Some(r) = &self.registry
            && (r.address.is_empty() || r.address.contains("://"))
        {
            bad(
                "registry.address".into(),
                format!("`{}` must be host[:port], without a scheme", r.address),
            );
        }
        for (name, h) in &self.docker_hosts {
            if !["unix://", "tcp://", "http://", "ssh://"]
                .iter()
                .any(|s| h.url.starts_with(s))
            {
                bad(
                    format!("docker_hosts.{name}.url"),
                    format!(
                        "`{}` must start with unix://, tcp:// (with tls_dir for TLS) or ssh://",
                        h.url
                    ),
                );
            }
            if let Some(rest) = h.url.strip_prefix("ssh://")
                && rest
                    .rsplit('@')
                    .next()
                    .is_some_and(|host| host.contains(':'))
            {
                bad(
                    format!("docker_hosts.{name}.url"),
                    "an ssh:// url cannot carry a port (the Docker client drops it): name a Host \
                     alias with that Port in ~/.ssh/config or /etc/ssh/ssh_config.d and use \
                     ssh://user@alias"
                        .into(),
                );
            }
            if let Some(key) = &h.ssh_key {
                if !h.url.starts_with("ssh://") {
                    bad(
                        format!("docker_hosts.{name}.ssh_key"),
                        "a key is for an ssh:// url (e.g. ssh://deploy@10.0.0.12)".into(),
                    );
                }
                if !key.is_file() {
                    bad(
                        format!("docker_hosts.{name}.ssh_key"),
                        format!("{} is not a file", key.display()),
                    );
                }
            }
            if let Some(dir) = &h.tls_dir {
                if !h.url.starts_with("tcp://") {
                    bad(
                        format!("docker_hosts.{name}.tls_dir"),
                        "TLS needs a tcp:// url (e.g. tcp://10.0.0.12:2376)".into(),
                    );
                }
                for why in tls_dir_problems(dir) {
                    bad(format!("docker_hosts.{name}.tls_dir"), why);
                }
            }
        }
        for (name, env) in &self.environments {
            if !["docker", "rancher"].contains(&env.target.as_str()) {
                bad(
                    format!("environments.{name}.target"),
                    format!(
                        "`{}` is not a target; use `docker` or `rancher`",
                        env.target
                    ),
                );
            }
            if !["auto", "manual"].contains(&env.approval.as_str()) {
                bad(
                    format!("environments.{name}.approval"),
                    format!(
                        "`{}` is not an approval mode; use `auto` or `manual`",
                        env.approval
                    ),
                );
            }
            if let Some(ports) = &env.ports
                && !distinct_pairs(ports)
            {
                bad(
                    format!("environments.{name}.ports"),
                    "must be pairs of different ports (the blue/green slots, two per replica)"
                        .into(),
                );
            }
            if env.approval_timeout_secs == 0 {
                bad(
                    format!("environments.{name}.approval_timeout_secs"),
                    "must be above 0".into(),
                );
            }
            if env.target == "rancher" && env.rancher.is_none() {
                bad(
                    format!("environments.{name}.rancher"),
                    "is required with target = \"rancher\": url, project_id, service_id, \
                     access_key, secret_key"
                        .into(),
                );
            }
            if let Some(r) = &env.rancher {
                for (key, why) in rancher_problems(r) {
                    bad(format!("environments.{name}.rancher.{key}"), why);
                }
            }
            for host in &env.hosts {
                if !self.docker_hosts.contains_key(host) {
                    bad(
                        format!("environments.{name}.hosts"),
                        format!("host `{host}` is not defined in [docker_hosts]"),
                    );
                }
            }
        }
        for (name, proj) in &self.projects {
            if !["svn", "git"].contains(&proj.source.kind.as_str()) {
                bad(
                    format!("projects.{name}.source.kind"),
                    format!(
                        "`{}` is not a source kind; use `svn` or `git`",
                        proj.source.kind
                    ),
                );
            }
            if proj.source.kind == "svn"
                && !proj.source.path.as_deref().unwrap_or("/").starts_with('/')
            {
                bad(
                    format!("projects.{name}.source.path"),
                    "must start with `/`, e.g. `/trunk/shop`".into(),
                );
            }
            if let Some(c) = &proj.config_repo {
                for (from, to) in &c.files {
                    if [from, to]
                        .iter()
                        .any(|p| p.starts_with('/') || p.split('/').any(|seg| seg == ".."))
                    {
                        bad(
                            format!("projects.{name}.config_repo.files"),
                            format!(
                                "`{from}` = `{to}` must be relative paths inside the repositories"
                            ),
                        );
                    }
                }
            }
            if proj.source.url.is_empty() {
                bad(
                    format!("projects.{name}.source.url"),
                    "must not be empty".into(),
                );
            }
            if proj.image.is_empty() {
                bad(format!("projects.{name}.image"), "must not be empty".into());
            }
            for env in &proj.environments {
                if !self.environments.contains_key(env) {
                    bad(
                        format!("projects.{name}.environments"),
                        format!("environment `{env}` is not defined in [environments]"),
                    );
                }
            }
            if proj.container.network != "host" && proj.container.container_port.is_none() {
                bad(
                    format!("projects.{name}.container.container_port"),
                    format!(
                        "network `{}` needs the port the app listens on inside its container",
                        proj.container.network
                    ),
                );
            }
            let replicas = proj.container.replicas as usize;
            if replicas == 0 {
                bad(
                    format!("projects.{name}.container.replicas"),
                    "must be at least 1".into(),
                );
            }
            let mut port_lists = vec![(
                format!("projects.{name}.container.ports"),
                &proj.container.ports,
            )];
            for e in &proj.environments {
                if let Some(p) = self.environments.get(e).and_then(|c| c.ports.as_ref()) {
                    port_lists.push((format!("environments.{e}.ports"), p));
                }
            }
            for (key, ports) in port_lists {
                if replicas > 0 && (ports.len() != 2 * replicas || !distinct_pairs(ports)) {
                    bad(
                        key,
                        format!(
                            "projects.{name} runs {replicas} replica(s): that needs {} different ports (two per replica), not {ports:?}",
                            2 * replicas
                        ),
                    );
                }
            }
            if let Some(plan) = &proj.tests {
                let has_base = |e: &str| {
                    self.environments
                        .get(e)
                        .is_some_and(|c| c.base_url.is_some() || c.target == "docker")
                };
                for (key, message) in crate::test_plan::problems(plan, &proj.environments, has_base)
                {
                    bad(format!("projects.{name}.tests.{key}"), message);
                }
                if let Some(host) = plan.container.as_ref().and_then(|c| c.host.as_ref())
                    && !self.docker_hosts.contains_key(host)
                {
                    bad(
                        format!("projects.{name}.tests.container.host"),
                        format!("host `{host}` is not defined in [docker_hosts]"),
                    );
                }
            }
        }
        operators::problems(
            &self.operators,
            &self.projects.keys().map(String::as_str).collect::<Vec<_>>(),
            &self
                .environments
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &mut p,
        );
        self.source_problems(&mut p);
        self.door_problems(&mut p);
        p.extend(
            self.notify.problems(
                crate::event::ALL_KINDS,
                &self.projects.keys().map(String::as_str).collect::<Vec<_>>(),
                &self
                    .environments
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
        );
        self.broker_user_problems(&mut p);
        p
    }

    /// Every secret value in the configuration, for scrubbing text that leaves Ferry
    /// (test output, notifications). Short values are left out: scrubbing `ab` from a
    /// log would mangle it without protecting anything.
    pub fn secret_values(&self) -> Vec<String> {
        let h = &self.hooks;
        let mut v: Vec<String> = [
            &h.gitlab_token,
            &h.github_secret,
            &h.gitea_secret,
            &h.svn_token,
            &h.harbor_auth,
            &h.manual_token,
            &self.build.svn_password,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().clone())
        .collect();
        v.extend(self.registry.iter().map(|r| r.password.expose().clone()));
        v.extend(
            self.environments
                .values()
                .filter_map(|e| e.rancher.as_ref())
                .map(|r| r.secret_key.expose().clone()),
        );
        v.extend(self.operators.values().map(|o| o.token.expose().clone()));
        v.extend(self.marked_secrets());
        v.extend(self.url_secrets());
        if let Ok(url) = self.broker.url.expose().parse::<lapin::uri::AMQPUri>() {
            v.push(url.authority.userinfo.password);
        }
        v.extend(self.broker_user_passwords());
        v.retain(|s| s.len() >= 4);
        v.sort();
        v.dedup();
        v
    }
}

/// Ports in blue/green pairs, all different.
fn distinct_pairs(ports: &[u16]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    !ports.is_empty() && ports.len().is_multiple_of(2) && ports.iter().all(|p| seen.insert(*p))
}

/// `hook-receiver` → `hook_receiver`: the key of a service under `[services]`.
pub fn service_key(name: &str) -> String {
    name.replace('-', "_")
}

/// The files a Docker TLS client folder lacks (`ca.pem`, `cert.pem`, `key.pem`).
fn tls_dir_problems(dir: &std::path::Path) -> Vec<String> {
    ["ca.pem", "cert.pem", "key.pem"]
        .into_iter()
        .filter(|file| !dir.join(file).is_file())
        .map(|file| {
            format!(
                "{} has no {file} (needs ca.pem, cert.pem, key.pem)",
                dir.display()
            )
        })
        .collect()
}

/// Why `path` is not a readable PEM certificate file (a `ca_file`), if it is not.
pub fn pem_certificate_problem(path: &std::path::Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => None,
        Ok(_) => Some(format!("{} holds no PEM certificate", path.display())),
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
    }
}

/// What is wrong in an environment's `[rancher]` table, as (key, reason).
fn rancher_problems(r: &RancherConfig) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
        p.push((
            "url",
            format!("`{}` must start with http:// or https://", r.url),
        ));
    }
    for (key, value) in [
        ("project_id", &r.project_id),
        ("service_id", &r.service_id),
        ("access_key", &r.access_key),
    ] {
        if value.trim().is_empty() {
            p.push((key, "must not be empty".into()));
        }
    }
    if !["finish", "rollback"].contains(&r.on_leftover_upgraded.as_str()) {
        p.push((
            "on_leftover_upgraded",
            format!(
                "`{}` is not one of finish, rollback",
                r.on_leftover_upgraded
            ),
        ));
    }
    if r.timeout_secs == 0 {
        p.push(("timeout_secs", "must be above 0".into()));
    }
    if r.batch_size == 0 {
        p.push(("batch_size", "must be above 0".into()));
    }
    if let Some(why) = r.ca_file.as_deref().and_then(pem_certificate_problem) {
        p.push(("ca_file", why));
    }
    if let Some(dir) = &r.host_tls_dir {
        p.extend(
            tls_dir_problems(dir)
                .into_iter()
                .map(|why| ("host_tls_dir", why)),
        );
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FerryConfig, ConfigError> {
        FerryConfig::from_toml_with_env(text, Path::new("test.toml"))
    }

    #[test]
    fn an_empty_file_gives_working_defaults() {
        let cfg = load("").unwrap();
        assert_eq!(cfg.broker.namespace, "ferry");
        assert_eq!(cfg.broker.max_attempts, 5);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = load(
            r#"
            [log]
            format = "xml"
            [broker]
            url = "http://nope"
            retry_delays_ms = []
            [services.builder]
            handler_timeout_secs = 3600
            [projects.shop]
            image = ""
            environments = ["nowhere"]
            source = { kind = "cvs", url = "x" }
            "#,
        )
        .unwrap_err()
        .to_string();
        for key in [
            "log.format",
            "broker.url",
            "broker.retry_delays_ms",
            "services.builder.handler_timeout_secs",
            "projects.shop.image",
            "projects.shop.environments",
            "projects.shop.source.kind",
        ] {
            assert!(err.contains(key), "{key} missing from:\n{err}");
        }
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let err = load("[broker]\nnamespcae = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("namespcae"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = load("[broker]\nmax_attempts = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_attempts"), "{err}");
    }

    #[test]
    fn a_rancher_environment_is_checked_at_start_up() {
        let err = load("[environments.prod]\ntarget = \"rancher\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("environments.prod.rancher"), "{err}");
        let err = load(
            r#"
            [environments.prod]
            target = "rancher"
            rancher = { url = "rancher.example.com", project_id = "1a5", service_id = "",
                        access_key = "k", secret_key = "s", on_leftover_upgraded = "finsh",
                        timeout_secs = 0, ca_file = "/nonexistent/ca.pem" }
            "#,
        )
        .unwrap_err()
        .to_string();
        for key in [
            "environments.prod.rancher.url",
            "environments.prod.rancher.service_id",
            "environments.prod.rancher.on_leftover_upgraded",
            "environments.prod.rancher.timeout_secs",
            "environments.prod.rancher.ca_file",
        ] {
            assert!(err.contains(key), "{key} missing from:\n{err}");
        }
    }

    #[test]
    fn the_broker_password_is_never_printed() {
        let cfg = load("[broker]\nurl = \"amqp://u:topsecret@h:5672/%2f\"\n").unwrap();
        assert!(!format!("{cfg:?}").contains("topsecret"));
        assert!(!serde_json::to_string(&cfg).unwrap().contains("topsecret"));
    }
}

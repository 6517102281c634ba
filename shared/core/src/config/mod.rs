//! Ferry's configuration: one TOML file for the whole installation (`FERRY_CONFIG` picks
//! the path) plus `FERRY__SECTION__KEY` environment overrides, validated at start-up.
//!
//! Unknown keys are errors: a misspelt key silently falling back to a default is the
//! kind of surprise an ops tool must not have. Every validation problem is reported
//! at once, each naming its key, so a bad file is fixed in one go.
//!
//! One module per section holds its types and their checks. The file is read into its
//! written form (`file.rs`), where one-word values are still strings, then parsed into
//! the types below: enums instead of words (`Target`, `Approval`, `PullPolicy`,
//! `SourceKind`, `LogFormat`, a channel's `ChannelKind`), so nothing downstream
//! compares strings, and a bad word is one problem among the others.

mod broker;
pub mod broker_users;
mod build;
mod canary;
mod dashboard;
mod docker_hosts;
mod door;
mod environments;
mod file;
mod files;
mod hooks;
mod host_files;
mod ledger;
mod load;
mod log;
mod maybe_secret;
mod network;
pub mod notify;
pub mod operators;
mod problem;
mod projects;
mod proxy;
mod pull;
mod rancher;
mod registry;
mod secrets;
mod services;
mod source;
mod source_url;
mod word;

pub use broker::{BrokerConfig, node_address};
pub use build::BuildConfig;
pub use canary::{CanaryConfig, CanaryStep, PrometheusCheck};
pub use dashboard::{DEFAULT_SESSION_HOURS, DashboardConfig, DashboardUrl};
pub use docker_hosts::DockerHostConfig;
pub use door::{
    DEFAULT_AUTH_FAILURES_PER_MINUTE, DEFAULT_BODY_TIMEOUT_SECS, DEFAULT_HEADER_TIMEOUT_SECS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, parse_ip_or_cidr,
    tls_server_config,
};
pub use environments::{Approval, EnvironmentConfig, Target};
pub use files::pem_certificate_problem;
pub use hooks::HooksConfig;
pub use host_files::HostFiles;
pub use ledger::{Backend as LedgerBackend, LedgerConfig, LedgerUrl};
pub use load::config_path;
pub use log::{LogConfig, LogFormat};
pub use maybe_secret::MaybeSecret;
pub use network::ContainerNetwork;
pub use operators::OperatorConfig;
pub use problem::{ConfigError, Problem};
pub use projects::{ConfigRepo, ContainerConfig, ProjectConfig};
pub use proxy::ProxyConfig;
pub use pull::{PullConfig, PullPolicy};
pub use rancher::{LeftoverAction, RancherConfig};
pub use registry::RegistryConfig;
pub use services::{ServiceConfig, service_key};
pub use source::{SourceConfig, SourceKind};
pub use source_url::without_userinfo;
pub use word::WordError;

use serde::Serialize;
use std::collections::BTreeMap;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/ferry/ferry.toml";
/// EX_USAGE from sysexits.h: what a service exits with on bad configuration.
pub const EXIT_BAD_CONFIG: i32 = 64;

/// The whole configuration, parsed and checked (see [`FerryConfig::load`]).
#[derive(Clone, Debug, Serialize)]
pub struct FerryConfig {
    pub log: LogConfig,
    pub broker: BrokerConfig,
    /// Per-service settings, keyed by service name with `_` for `-`
    /// (`hook_receiver`, `rancher_updater`) so environment overrides can name them.
    pub services: BTreeMap<String, ServiceConfig>,
    pub hooks: HooksConfig,
    pub build: BuildConfig,
    pub pull: PullConfig,
    /// The reverse proxy in front of environments with a stable port.
    pub proxy: ProxyConfig,
    pub registry: Option<RegistryConfig>,
    pub docker_hosts: BTreeMap<String, DockerHostConfig>,
    pub environments: BTreeMap<String, EnvironmentConfig>,
    pub projects: BTreeMap<String, ProjectConfig>,
    /// People allowed to use the operator API (`ferry approve`, `reject`, `rollback`,
    /// `deploy`, `runs`), each with a bearer token. The name is what events record.
    pub operators: BTreeMap<String, OperatorConfig>,
    /// Notifications: channels, routes, the author map.
    pub notify: notify::NotifyConfig,
    /// Where the run ledger is kept (none by default).
    pub ledger: LedgerConfig,
    /// The web dashboard's sessions.
    pub dashboard: DashboardConfig,
}

impl FerryConfig {
    /// The settings of one service (by its binary name), defaults filled in.
    pub fn service(&self, name: &str) -> ServiceConfig {
        self.services
            .get(&service_key(name))
            .cloned()
            .unwrap_or_default()
    }

    /// The checks of the parsed sections, each with what it refers to in the others.
    fn check(&self, out: &mut Vec<Problem>) {
        self.broker.check(out);
        self.ledger.check(out);
        self.dashboard.check(out);
        services::check(&self.services, self.broker.consumer_timeout_secs, out);
        self.hooks.check(out);
        self.pull.check(out);
        self.proxy.check(out);
        self.proxy_port_problems(out);
        self.build.check(out);
        if let Some(r) = &self.registry {
            r.check(out);
        }
        for (name, h) in &self.docker_hosts {
            h.check(name, out);
        }
        for (name, e) in &self.environments {
            e.check(name, &self.docker_hosts, out);
        }
        for (name, p) in &self.projects {
            p.check(name, self, out);
        }
        let projects: Vec<&str> = self.projects.keys().map(String::as_str).collect();
        let environments: Vec<&str> = self.environments.keys().map(String::as_str).collect();
        operators::problems(&self.operators, &projects, &environments, out);
        self.door_problems(out);
        self.broker_user_problems(out);
    }
}

#[cfg(test)]
mod tests;

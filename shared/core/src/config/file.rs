//! The configuration file as written, and its parsing into [`FerryConfig`].
//!
//! Sections whose keys hold one-word values or combine into one typed value (`target`
//! with `[rancher]`, a channel's `kind` with its keys) have a written form of their own
//! (`LogFile`, `EnvironmentFile`, ...); the others are read as they are used.

use super::FerryConfig;
use super::broker::BrokerConfig;
use super::build::BuildConfig;
use super::docker_hosts::DockerHostConfig;
use super::environments::EnvironmentFile;
use super::hooks::HooksConfig;
use super::host_files::HostFiles;
use super::log::LogFile;
use super::notify::{Known, NotifyFile};
use super::operators::OperatorConfig;
use super::problem::Problem;
use super::projects::ProjectFile;
use super::pull::PullFile;
use super::registry::RegistryConfig;
use super::services::ServiceConfig;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    log: LogFile,
    #[serde(default)]
    broker: BrokerConfig,
    #[serde(default)]
    services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    hooks: HooksConfig,
    #[serde(default)]
    build: BuildConfig,
    #[serde(default)]
    pull: PullFile,
    #[serde(default)]
    proxy: super::ProxyConfig,
    #[serde(default)]
    registry: Option<RegistryConfig>,
    #[serde(default)]
    docker_hosts: BTreeMap<String, DockerHostConfig>,
    #[serde(default)]
    environments: BTreeMap<String, EnvironmentFile>,
    #[serde(default)]
    projects: BTreeMap<String, ProjectFile>,
    #[serde(default)]
    operators: BTreeMap<String, OperatorConfig>,
    #[serde(default)]
    notify: NotifyFile,
    #[serde(default)]
    ledger: super::LedgerConfig,
    #[serde(default)]
    dashboard: super::DashboardConfig,
}

impl FileConfig {
    /// Every section parsed and checked (the deploy hosts' credential files when
    /// `host_files` says so): the configuration, or every problem with it, ordered by key.
    pub(super) fn parse(self, host_files: HostFiles) -> Result<FerryConfig, Vec<Problem>> {
        let mut out = Vec::new();
        let project_names: Vec<String> = self.projects.keys().cloned().collect();
        let environment_names: Vec<String> = self.environments.keys().cloned().collect();
        let known = Known {
            kinds: crate::event::ALL_KINDS,
            projects: project_names.iter().map(String::as_str).collect(),
            environments: environment_names.iter().map(String::as_str).collect(),
        };
        let cfg = FerryConfig {
            log: self.log.parse(&mut out),
            broker: self.broker,
            services: self.services,
            hooks: self.hooks,
            build: self.build,
            pull: self.pull.parse(&mut out),
            proxy: self.proxy,
            registry: self.registry,
            docker_hosts: self.docker_hosts,
            environments: (self.environments.into_iter())
                .map(|(name, e)| {
                    let parsed = e.parse(&name, &mut out);
                    (name, parsed)
                })
                .collect(),
            projects: (self.projects.into_iter())
                .map(|(name, p)| {
                    let parsed = p.parse(&name, &mut out);
                    (name, parsed)
                })
                .collect(),
            operators: self.operators,
            notify: self.notify.parse(&known, &mut out),
            ledger: self.ledger,
            dashboard: self.dashboard,
        };
        cfg.check(&mut out);
        if host_files == HostFiles::Check {
            cfg.host_file_problems(&mut out);
        }
        if out.is_empty() {
            Ok(cfg)
        } else {
            // Stable: problems of one key stay in the order they were found.
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Err(out)
        }
    }
}

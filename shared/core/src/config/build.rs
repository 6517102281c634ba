//! `[build]`: where and how images are built (builder) and pushed (pusher), and how
//! the builder reads sources.

use super::files::pem_certificate_problem;
use super::network::ContainerNetwork;
use super::problem::{Problem, Report};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// The Docker Engine the builder builds on and the pusher pushes from, when
    /// `docker_hosts` is empty.
    pub docker_host: String,
    /// Several build engines: builds spread over them (`builds_per_host` at a time on
    /// each, per builder), and the pusher pushes each image from the engine that built
    /// it (named in `image.built`). Empty: `docker_host` alone.
    pub docker_hosts: Vec<String>,
    /// Builds at once on one engine, per builder process.
    pub builds_per_host: u16,
    /// Per-project working copies (code and config repo), reused between builds.
    pub work_dir: PathBuf,
    /// Build logs, one folder per run: `<log_dir>/<run_id>/build.log`.
    pub log_dir: PathBuf,
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
    /// PEM of the CA(s) that signed an https:// SVN server's certificate: `svn` is told
    /// to trust exactly that CA (`servers:global:ssl-authority-files`), never an unknown one.
    pub svn_ca_file: Option<PathBuf>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            docker_host: "unix:///var/run/docker.sock".into(),
            docker_hosts: Vec::new(),
            builds_per_host: 1,
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

impl BuildConfig {
    /// The build engines' URLs, in configured order: `docker_hosts`, else `docker_host`.
    pub fn engines(&self) -> Vec<&str> {
        if self.docker_hosts.is_empty() {
            vec![self.docker_host.as_str()]
        } else {
            self.docker_hosts.iter().map(String::as_str).collect()
        }
    }

    /// Whether `url` is one of the build engines (an event naming another is refused).
    pub fn is_engine(&self, url: &str) -> bool {
        self.engines().contains(&url)
    }

    /// Builds one builder process runs at once: every engine's slots.
    pub fn build_slots(&self) -> u16 {
        let engines = u16::try_from(self.engines().len()).unwrap_or(u16::MAX);
        engines.saturating_mul(self.builds_per_host.max(1))
    }

    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.max_log_bytes < 4096 {
            out.bad("build.max_log_bytes", "must be at least 4096");
        }
        if self.builds_per_host == 0 {
            out.bad("build.builds_per_host", "must be at least 1");
        }
        let keyed = std::iter::once(("build.docker_host".to_owned(), &self.docker_host)).chain(
            self.docker_hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("build.docker_hosts[{i}]"), h)),
        );
        for (key, url) in keyed {
            if !["unix://", "tcp://", "http://"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                out.bad(
                    key,
                    format!("`{url}` must start with unix://, tcp:// or http://"),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for h in &self.docker_hosts {
            if !seen.insert(h.trim_end_matches('/')) {
                out.bad(
                    "build.docker_hosts",
                    format!("`{h}` is listed twice: each engine once"),
                );
            }
        }
        if let Some(why) = self
            .svn_ca_file
            .as_deref()
            .and_then(pem_certificate_problem)
        {
            out.bad(
                "build.svn_ca_file",
                format!("{why}: give the PEM of the CA that signed the SVN server's certificate"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FerryConfig;
    use std::path::Path;

    #[test]
    fn an_svn_ca_file_that_is_not_a_certificate_is_refused_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        for path in [Path::new("/nonexistent/ca.pem"), not_pem.as_path()] {
            let text = format!("[build]\nsvn_ca_file = \"{}\"\n", path.display());
            let err = FerryConfig::from_toml_with_env(&text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("build.svn_ca_file"), "{err}");
        }
    }
}

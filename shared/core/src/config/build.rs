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
    /// The Docker Engine the builder builds on and the pusher pushes from: the image
    /// must be on the daemon that pushes it, so both services use this one.
    pub docker_host: String,
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
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if self.max_log_bytes < 4096 {
            out.bad("build.max_log_bytes", "must be at least 4096");
        }
        if !["unix://", "tcp://", "http://"]
            .iter()
            .any(|p| self.docker_host.starts_with(p))
        {
            out.bad(
                "build.docker_host",
                format!(
                    "`{}` must start with unix://, tcp:// or http://",
                    self.docker_host
                ),
            );
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

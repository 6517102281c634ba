//! `[docker_hosts.<name>]`: the Docker engines images are pulled onto and run on.

use super::problem::{Problem, Report};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    pub tls_dir: Option<PathBuf>,
    /// For an `ssh://user@host[:port]` host: the private key to log in with (default:
    /// the ssh client's own configuration). The remote account runs
    /// `docker system dial-stdio`, so it needs the docker CLI and access to the engine.
    #[serde(default)]
    pub ssh_key: Option<PathBuf>,
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

    /// What is wrong with the host `name`.
    pub(super) fn check(&self, name: &str, out: &mut Vec<Problem>) {
        let key = |field: &str| format!("docker_hosts.{name}.{field}");
        let url = &self.url;
        if !["unix://", "tcp://", "http://", "ssh://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            out.bad(
                key("url"),
                format!("`{url}` must start with unix://, tcp:// (with tls_dir for TLS) or ssh://"),
            );
        }
        if let Some(rest) = url.strip_prefix("ssh://")
            && rest
                .rsplit('@')
                .next()
                .is_some_and(|host| host.contains(':'))
        {
            out.bad(
                key("url"),
                "an ssh:// url cannot carry a port (the Docker client drops it): name a Host \
                 alias with that Port in ~/.ssh/config or /etc/ssh/ssh_config.d and use \
                 ssh://user@alias",
            );
        }
        // Whether the files exist is checked where they are used (host_files.rs).
        if self.ssh_key.is_some() && !url.starts_with("ssh://") {
            out.bad(
                key("ssh_key"),
                "a key is for an ssh:// url (e.g. ssh://deploy@10.0.0.12)",
            );
        }
        if self.tls_dir.is_some() && !url.starts_with("tcp://") {
            out.bad(
                key("tls_dir"),
                "TLS needs a tcp:// url (e.g. tcp://10.0.0.12:2376)",
            );
        }
    }
}

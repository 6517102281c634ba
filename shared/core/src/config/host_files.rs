//! The files that open deploy hosts (Docker hosts' TLS client keys and SSH keys, the TLS
//! folder of Rancher's hosts): checked at start-up only by the processes that use them, so
//! that a service which never talks to a host (hook-receiver, builder, pusher, notifier)
//! can run without them: its container is not given the keys (least privilege).

use super::files::tls_dir_problems;
use super::problem::{Problem, Report};
use super::{FerryConfig, Target};

/// Whether this process opens the deploy hosts' credential files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostFiles {
    /// It talks to deploy hosts (puller, rancher-updater, tester, the CLI): a missing key
    /// is a start-up error, not a failure at the first deploy.
    Check,
    /// It never does: the files may be absent where it runs.
    Skip,
}

impl FerryConfig {
    /// What is wrong with the credential files the configuration names.
    pub(super) fn host_file_problems(&self, out: &mut Vec<Problem>) {
        for (name, h) in &self.docker_hosts {
            let key = |field: &str| format!("docker_hosts.{name}.{field}");
            for why in h.tls_dir.iter().flat_map(|d| tls_dir_problems(d)) {
                out.bad(key("tls_dir"), why);
            }
            if let Some(ssh_key) = h.ssh_key.as_ref().filter(|k| !k.is_file()) {
                out.bad(
                    key("ssh_key"),
                    format!("{} is not a file", ssh_key.display()),
                );
            }
        }
        for (name, e) in &self.environments {
            if let Target::Rancher(r) = &e.target {
                for why in r.host_tls_dir.iter().flat_map(|d| tls_dir_problems(d)) {
                    out.bad(format!("environments.{name}.rancher.host_tls_dir"), why);
                }
            }
        }
    }
}

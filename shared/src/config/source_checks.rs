//! Start-up checks of how the builder reads sources: the SVN server's CA file.

use super::{FerryConfig, Problem, pem_certificate_problem};

impl FerryConfig {
    /// `build.svn_ca_file` must be a readable PEM certificate: `svn` is told to trust
    /// exactly that CA (`servers:global:ssl-authority-files`), never an unknown one.
    pub(super) fn source_problems(&self, out: &mut Vec<Problem>) {
        if let Some(why) = self
            .build
            .svn_ca_file
            .as_deref()
            .and_then(pem_certificate_problem)
        {
            out.push(Problem {
                key: "build.svn_ca_file".into(),
                message: format!(
                    "{why}: give the PEM of the CA that signed the SVN server's certificate"
                ),
            });
        }
    }
}

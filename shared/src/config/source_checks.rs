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

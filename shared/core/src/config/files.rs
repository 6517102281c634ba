//! Checks of the files a configuration names (CA certificates, TLS client folders):
//! a missing or wrong file is found at start-up, not at the first deploy.

use std::path::Path;

/// The files a Docker TLS client folder lacks (`ca.pem`, `cert.pem`, `key.pem`).
pub(super) fn tls_dir_problems(dir: &Path) -> Vec<String> {
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
pub fn pem_certificate_problem(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => None,
        Ok(_) => Some(format!("{} holds no PEM certificate", path.display())),
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
    }
}

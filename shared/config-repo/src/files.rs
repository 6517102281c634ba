//! What the config repo contributes: its files laid over the code, and the values in
//! its secret files (scrubbed from build logs, events and test reports).

use crate::{ConfigRepoError, checkout, working_copy};
use ferry_shared::config::{ConfigRepo, FerryConfig};
use ferry_shared::scrub::secret_file_values;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config repo's part of a build context.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// Path in the build context → the file in the checkout that goes there.
    pub files: BTreeMap<String, PathBuf>,
    /// The values of the secret files among them.
    pub secrets: Vec<String>,
}

/// What the config repo checked out at `root` lays over the code of a project built
/// from `dockerfile`: every file in `files` (each must exist), and the repo's own
/// `Dockerfile` in place of the project's unless `files` already puts one there.
pub fn overlay(
    root: &Path,
    repo: &ConfigRepo,
    dockerfile: &str,
) -> Result<Overlay, ConfigRepoError> {
    let mut overlay = Overlay::default();
    let rules = repo.key_rules();
    for (from, to) in &repo.files {
        let file = root.join(from);
        if !file.is_file() {
            return Err(ConfigRepoError::MissingFile(from.clone()));
        }
        if is_secret_file(repo, from, to) {
            overlay.secrets.extend(secret_file_values(
                from,
                &std::fs::read_to_string(&file).unwrap_or_default(),
                &rules,
            ));
        }
        overlay.files.insert(to.clone(), file);
    }
    if root.join("Dockerfile").is_file() && !repo.files.values().any(|t| t == dockerfile) {
        overlay
            .files
            .insert(dockerfile.to_owned(), root.join("Dockerfile"));
    }
    Ok(overlay)
}

/// Whether a config-repo file holds secrets: those listed in `secret_files`, or by
/// default any whose name says `env` (`.env`, `app.env`, `env/production`).
pub fn is_secret_file(repo: &ConfigRepo, from: &str, to: &str) -> bool {
    match &repo.secret_files {
        Some(list) => list.iter().any(|f| f == from),
        None => from.contains("env") || to.contains("env"),
    }
}

/// The secret values in a project's config repo (its secret files, at the branch's
/// latest commit), for services that must scrub what they record but do not build: the
/// tester quotes the application's answers and output. Checked out in
/// `<build.work_dir>/<project>/<folder>`.
pub async fn config_secrets(
    cfg: &FerryConfig,
    project: &str,
    repo: &ConfigRepo,
    folder: &str,
) -> Result<Vec<String>, ConfigRepoError> {
    let b = &cfg.build;
    let dir = working_copy(b, project, folder);
    let root = checkout(&dir, repo, Duration::from_secs(b.timeout_secs), None)
        .await?
        .root;
    let mut secrets = Vec::new();
    let rules = repo.key_rules();
    for (from, to) in &repo.files {
        if is_secret_file(repo, from, to) {
            let text = std::fs::read_to_string(root.join(from)).unwrap_or_default();
            secrets.extend(secret_file_values(from, &text, &rules));
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)], secret_files: Option<Vec<String>>) -> ConfigRepo {
        ConfigRepo {
            url: "file:///nowhere".into(),
            branch: "main".into(),
            path: None,
            files: files
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .collect(),
            secret_files,
            secret_keys: vec![],
            plain_keys: vec![],
        }
    }

    #[test]
    fn files_named_env_are_secret_unless_secret_files_says_otherwise() {
        let r = repo(&[], None);
        assert!(is_secret_file(&r, "env/production.env", ".env"));
        assert!(is_secret_file(&r, "prod", ".env"));
        assert!(!is_secret_file(&r, "nginx/site.conf", "docker/nginx.conf"));
        let r = repo(&[], Some(vec!["app.json".into()]));
        assert!(is_secret_file(&r, "app.json", "config/app.json"));
        assert!(!is_secret_file(&r, "env/production.env", ".env"));
    }

    #[test]
    fn the_overlay_maps_every_file_and_reads_the_secret_ones() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("env")).unwrap();
        std::fs::write(
            root.path().join("env/production.env"),
            "DB_PASSWORD=s3cret-value\n",
        )
        .unwrap();
        std::fs::write(root.path().join("site.conf"), "listen 80;\n").unwrap();
        std::fs::write(root.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let r = repo(
            &[("env/production.env", ".env"), ("site.conf", "nginx.conf")],
            None,
        );
        let o = overlay(root.path(), &r, "docker/Dockerfile").unwrap();
        assert_eq!(o.files[".env"], root.path().join("env/production.env"));
        assert_eq!(o.files["nginx.conf"], root.path().join("site.conf"));
        // The repo's own Dockerfile replaces the project's.
        assert_eq!(o.files["docker/Dockerfile"], root.path().join("Dockerfile"));
        assert!(
            o.secrets.iter().any(|s| s == "s3cret-value"),
            "{:?}",
            o.secrets
        );
        assert!(!o.secrets.iter().any(|s| s.contains("listen")));
    }

    #[test]
    fn a_listed_file_that_is_missing_is_named() {
        let root = tempfile::tempdir().unwrap();
        let r = repo(&[("env/missing.env", ".env")], None);
        let e = overlay(root.path(), &r, "Dockerfile").unwrap_err();
        assert!(matches!(&e, ConfigRepoError::MissingFile(f) if f == "env/missing.env"));
        assert!(
            e.to_string().contains("projects.<name>.config_repo.files"),
            "{e}"
        );
    }
}

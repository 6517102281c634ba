//! Working copies: the code at exactly the triggering revision, and the config repo at
//! its latest commit. One folder per project, updated in place between builds; a copy
//! a crash left broken is thrown away and checked out afresh.

use crate::command::{Failed, run};
use crate::error::BuildError;
use ferry_shared::config::{BuildConfig, ConfigRepo, SourceConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Checkouts<'a> {
    pub cfg: &'a BuildConfig,
    pub timeout: Duration,
}

impl Checkouts<'_> {
    /// The project's code at `revision`; returns its folder.
    pub async fn code(
        &self,
        project: &str,
        source: &SourceConfig,
        revision: &str,
    ) -> Result<PathBuf, BuildError> {
        let dir = self.cfg.work_dir.join(project).join("code");
        match source.kind.as_str() {
            "svn" => self.svn(&dir, source, revision).await?,
            _ => self.git(&dir, &source.url, revision).await?,
        }
        Ok(dir)
    }

    async fn svn(
        &self,
        dir: &Path,
        source: &SourceConfig,
        revision: &str,
    ) -> Result<(), BuildError> {
        let url = format!(
            "{}{}",
            source.url.trim_end_matches('/'),
            source.path.as_deref().unwrap_or("")
        );
        let rev = format!("-r{revision}");
        let user = self.cfg.svn_username.clone().unwrap_or_default();
        let password = self.cfg.svn_password.as_ref().map(|p| p.expose().clone());
        let mut auth = vec![
            "--non-interactive",
            "--no-auth-cache",
            "--trust-server-cert-failures=unknown-ca",
        ];
        if !user.is_empty() {
            auth.extend(["--username", user.as_str()]);
        }
        if password.is_some() {
            auth.push("--password-from-stdin");
        }
        let pw = password.as_deref();
        if dir.join(".svn").is_dir() {
            // Reuse: undo anything a crashed build left, then move to the revision.
            let d = dir.to_string_lossy().into_owned();
            let reused = async {
                run(
                    "svn",
                    &[
                        &["cleanup", "--remove-unversioned", "--remove-ignored", &d],
                        &auth[..2],
                    ]
                    .concat(),
                    None,
                    None,
                    self.timeout,
                )
                .await?;
                run(
                    "svn",
                    &[&["revert", "-R", &d], &auth[..2]].concat(),
                    None,
                    None,
                    self.timeout,
                )
                .await?;
                run(
                    "svn",
                    &[&["switch", "--ignore-ancestry", &rev, &url, &d], &auth[..]].concat(),
                    None,
                    pw,
                    self.timeout,
                )
                .await
            }
            .await;
            match reused {
                Ok(_) => return Ok(()),
                Err(f) if is_permanent_svn(&f) => return Err(svn_error(f)),
                Err(f) => tracing::warn!(
                    "working copy {} unusable ({}), checking out afresh",
                    dir.display(),
                    f.detail
                ),
            }
        }
        fresh(dir)?;
        let d = dir.to_string_lossy().into_owned();
        run(
            "svn",
            &[&["checkout", &rev, &url, &d], &auth[..]].concat(),
            None,
            pw,
            self.timeout,
        )
        .await
        .map_err(svn_error)?;
        Ok(())
    }

    async fn git(&self, dir: &Path, url: &str, sha: &str) -> Result<(), BuildError> {
        let ok = dir.join(".git").is_dir() && self.git_update(dir, url, sha).await.is_ok();
        if !ok {
            fresh(dir)?;
            let d = dir.to_string_lossy().into_owned();
            run("git", &["init", "-q", &d], None, None, self.timeout)
                .await
                .map_err(git_error)?;
            self.git_update(dir, url, sha).await.map_err(git_error)?;
        }
        Ok(())
    }

    async fn git_update(&self, dir: &Path, url: &str, sha: &str) -> Result<(), Failed> {
        let t = self.timeout;
        let _ = run("git", &["remote", "remove", "origin"], Some(dir), None, t).await;
        run("git", &["remote", "add", "origin", url], Some(dir), None, t).await?;
        // Fetch the commit itself when the server allows it, else everything.
        if run("git", &["fetch", "-q", "origin", sha], Some(dir), None, t)
            .await
            .is_err()
        {
            run(
                "git",
                &[
                    "fetch",
                    "-q",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(dir),
                None,
                t,
            )
            .await?;
        }
        run(
            "git",
            &["checkout", "-q", "--force", "--detach", sha],
            Some(dir),
            None,
            t,
        )
        .await?;
        run("git", &["clean", "-q", "-ffdx"], Some(dir), None, t).await?;
        Ok(())
    }

    /// The config repo's branch at its latest commit: its folder (the configured
    /// sub-path) and the commit id.
    pub async fn config(
        &self,
        project: &str,
        repo: &ConfigRepo,
    ) -> Result<(PathBuf, String), BuildError> {
        self.config_in("config", project, repo).await
    }

    /// The same, in `<work_dir>/<project>/<folder>`: another service on the builder's
    /// machine must not share the builder's working copy.
    pub async fn config_in(
        &self,
        folder: &str,
        project: &str,
        repo: &ConfigRepo,
    ) -> Result<(PathBuf, String), BuildError> {
        let dir = self.cfg.work_dir.join(project).join(folder);
        let t = self.timeout;
        let update = async {
            if !dir.join(".git").is_dir() {
                fresh(&dir).map_err(|e| Failed {
                    what: "mkdir".into(),
                    detail: e.to_string(),
                })?;
                run("git", &["init", "-q", "."], Some(&dir), None, t).await?;
            }
            let _ = run("git", &["remote", "remove", "origin"], Some(&dir), None, t).await;
            run(
                "git",
                &["remote", "add", "origin", &repo.url],
                Some(&dir),
                None,
                t,
            )
            .await?;
            let refspec = format!("+refs/heads/{b}:refs/remotes/origin/{b}", b = repo.branch);
            run(
                "git",
                &["fetch", "-q", "origin", &refspec],
                Some(&dir),
                None,
                t,
            )
            .await?;
            let target = format!("origin/{}", repo.branch);
            run(
                "git",
                &["checkout", "-q", "--force", "--detach", &target],
                Some(&dir),
                None,
                t,
            )
            .await?;
            run("git", &["clean", "-q", "-ffdx"], Some(&dir), None, t).await?;
            run("git", &["rev-parse", "HEAD"], Some(&dir), None, t).await
        };
        let commit = match update.await {
            Ok(c) => c,
            Err(_) => {
                // One clean retry from scratch before calling it failed.
                fresh(&dir)?;
                let d = dir.to_string_lossy().into_owned();
                run(
                    "git",
                    &["clone", "-q", "--branch", &repo.branch, &repo.url, &d],
                    None,
                    None,
                    t,
                )
                .await
                .map_err(|f| BuildError::ConfigCheckout(describe_git(&f)))?;
                run("git", &["rev-parse", "HEAD"], Some(&dir), None, t)
                    .await
                    .map_err(|f| BuildError::ConfigCheckout(describe_git(&f)))?
            }
        };
        let root = match &repo.path {
            Some(p) => dir.join(p.trim_matches('/')),
            None => dir.clone(),
        };
        if !root.is_dir() {
            return Err(BuildError::ConfigCheckout(format!(
                "the config repo has no folder `{}` on branch {}",
                repo.path.as_deref().unwrap_or(""),
                repo.branch
            )));
        }
        Ok((root, commit.trim().to_owned()))
    }
}

fn fresh(dir: &Path) -> Result<(), BuildError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| BuildError::Workspace(format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| BuildError::Workspace(format!("cannot create {}: {e}", dir.display())))
}

/// Failures no retry can fix: wrong credentials, a path or revision that does not exist.
fn is_permanent_svn(f: &Failed) -> bool {
    [
        "E170001", "E215004", "E160013", "E160006", "E170000", "E195012",
    ]
    .iter()
    .any(|code| f.detail.contains(code))
}

fn svn_error(f: Failed) -> BuildError {
    let hint = if f.detail.contains("E170001") || f.detail.contains("E215004") {
        "authentication failed: check build.svn_username and build.svn_password"
    } else if f.detail.contains("E160013") || f.detail.contains("E170000") {
        "the path does not exist in the repository: check projects.<name>.source.url and .path"
    } else if f.detail.contains("E160006") {
        "no such revision in the repository"
    } else {
        "the repository could not be read"
    };
    let permanent = is_permanent_svn(&f);
    BuildError::Checkout {
        hint: hint.into(),
        detail: f.detail,
        permanent,
    }
}

fn describe_git(f: &Failed) -> String {
    format!(
        "{} failed: {}",
        f.what
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        f.detail
    )
}

fn git_error(f: Failed) -> BuildError {
    let d = f.detail.to_ascii_lowercase();
    let permanent = [
        "authentication failed",
        "not found",
        "could not read username",
        "unknown revision",
        "reference is not a tree",
        "not our ref",
        "pathspec",
    ]
    .iter()
    .any(|p| d.contains(p));
    let hint = if d.contains("authentication") || d.contains("username") {
        "authentication failed: give the builder access to the repository"
    } else if d.contains("not found") {
        "the repository does not exist: check projects.<name>.source.url"
    } else if permanent {
        "the commit is not in the repository"
    } else {
        "the repository could not be read"
    };
    BuildError::Checkout {
        hint: hint.into(),
        detail: describe_git(&f),
        permanent,
    }
}

//! The config repo's working copy: one folder per project and service, updated in
//! place to the branch's latest commit; a copy that cannot be updated is cloned afresh.

use crate::ConfigRepoError;
use ferry_shared::config::{BuildConfig, ConfigRepo};
use ferry_shared::revision::CommitId;
use ferry_vcs::{Failed, git};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config repo checked out at its branch's latest commit.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The configured folder (`config_repo.path`) in the working copy: `files` are
    /// relative to it.
    pub root: PathBuf,
    /// The commit checked out: it names the image's config (tag and label).
    pub commit: String,
}

/// `<build.work_dir>/<project>/<folder>`: each service on the builder's machine keeps
/// its own copy, so one never updates a copy another is reading.
pub fn working_copy(build: &BuildConfig, project: &str, folder: &str) -> PathBuf {
    build.work_dir.join(project).join(folder)
}

/// Bring the working copy in `dir` to the latest commit of `repo`'s branch, within
/// `timeout` per git command. Anything a crash left behind is discarded; a copy that
/// cannot be updated gets one clean clone before the checkout counts as failed.
///
/// `contains` is a pushed config commit the run was started for: the branch must
/// contain it (it is the tip, or the tip came after it). The tip is what is built, so
/// of two quick pushes neither run can put the older config back after the newer.
pub async fn checkout(
    dir: &Path,
    repo: &ConfigRepo,
    timeout: Duration,
    contains: Option<&CommitId>,
) -> Result<Checkout, ConfigRepoError> {
    let t = timeout;
    let here = Some(dir);
    let update = async {
        if !dir.join(".git").is_dir() {
            fresh(dir).map_err(|e| Failed {
                what: "mkdir".into(),
                detail: e.to_string(),
            })?;
            git(here, t, &["init", "-q"], &["."]).await?;
        }
        let _ = git(here, t, &["remote", "remove"], &["origin"]).await;
        git(here, t, &["remote", "add"], &["origin", &repo.url]).await?;
        let refspec = format!("+refs/heads/{b}:refs/remotes/origin/{b}", b = repo.branch);
        git(here, t, &["fetch", "-q"], &["origin", &refspec]).await?;
        let target = format!("refs/remotes/origin/{}", repo.branch);
        let detach = ["switch", "-q", "--discard-changes", "--detach"];
        git(here, t, &detach, &[&target]).await?;
        git(here, t, &["clean", "-q", "-ffdx"], &[]).await?;
        git(here, t, &["rev-list", "--max-count=1"], &["HEAD"]).await
    };
    let commit = match update.await {
        Ok(c) => c,
        Err(_) => {
            // One clean retry from scratch before calling it failed.
            fresh(dir)?;
            let d = dir.to_string_lossy().into_owned();
            git(
                None,
                t,
                &["clone", "-q", "--branch", &repo.branch],
                &[&repo.url, &d],
            )
            .await
            .map_err(|f| ConfigRepoError::Checkout(describe_git(&f)))?;
            git(here, t, &["rev-list", "--max-count=1"], &["HEAD"])
                .await
                .map_err(|f| ConfigRepoError::Checkout(describe_git(&f)))?
        }
    };
    if let Some(pushed) = contains {
        // Nothing reachable from the pushed commit but not from the tip: it is on the
        // branch (`git merge-base --is-ancestor`, without its exit-code protocol).
        let outside = git(
            here,
            t,
            &["rev-list", "--max-count=1"],
            &[pushed.as_str(), "^HEAD"],
        )
        .await;
        if !outside.is_ok_and(|o| o.trim().is_empty()) {
            return Err(ConfigRepoError::NotOnBranch {
                commit: pushed.to_string(),
                branch: repo.branch.clone(),
            });
        }
    }
    let root = match &repo.path {
        Some(p) => dir.join(p.trim_matches('/')),
        None => dir.to_path_buf(),
    };
    if !root.is_dir() {
        return Err(ConfigRepoError::Checkout(format!(
            "the config repo has no folder `{}` on branch {}",
            repo.path.as_deref().unwrap_or(""),
            repo.branch
        )));
    }
    Ok(Checkout {
        root,
        commit: commit.trim().to_owned(),
    })
}

fn fresh(dir: &Path) -> Result<(), ConfigRepoError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| {
            ConfigRepoError::Workspace(format!("cannot clear {}: {e}", dir.display()))
        })?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| ConfigRepoError::Workspace(format!("cannot create {}: {e}", dir.display())))
}

/// `git clone failed: <what git said>`, without the command's arguments (the URL may
/// carry a token).
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

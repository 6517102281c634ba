//! The code's working copy, at exactly the triggering revision (the config repo's is
//! `ferry_config_repo`'s). One folder per project, updated in place between builds; a
//! copy a crash left broken is thrown away and checked out afresh.

use crate::error::BuildError;
use crate::remote::{RemoteRefs, Tie};
use ferry_shared::config::{BuildConfig, SourceConfig};
use ferry_shared::event::SourceChanged;
use ferry_shared::revision::{GitRevision, PushedRef, Revision, SvnRevision};
use ferry_vcs::{Failed, git, svn};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Checkouts<'a> {
    pub cfg: &'a BuildConfig,
    pub timeout: Duration,
}

/// Why a git checkout attempt stopped: a tool failed (a fresh copy may help), or the
/// revision must not be built (nothing will help).
enum Stop {
    Tool(Failed),
    Refused(BuildError),
}

impl From<Failed> for Stop {
    fn from(f: Failed) -> Self {
        Self::Tool(f)
    }
}

impl Checkouts<'_> {
    /// The project's code at the revision `event` names; returns its folder and the
    /// exact revision checked out (a branch or tag name is resolved to its commit).
    pub async fn code(
        &self,
        project: &str,
        source: &SourceConfig,
        event: &SourceChanged,
    ) -> Result<(PathBuf, String), BuildError> {
        let dir = self.cfg.work_dir.join(project).join("code");
        // Events are input too: parsed again here, whoever published them.
        let revision = Revision::parse(source.kind.as_str(), &event.revision)
            .map_err(|e| BuildError::Refused(format!("{e}; nothing was checked out")))?;
        match revision {
            Revision::Svn(r) => {
                self.svn(&dir, source, r).await?;
                Ok((dir, r.to_string()))
            }
            Revision::Git(g) => {
                let claimed = event
                    .reference
                    .as_deref()
                    .map(PushedRef::parse)
                    .transpose()
                    .map_err(|e| BuildError::Refused(format!("the pushed reference: {e}")))?;
                let sha = self.git(&dir, source, &g, claimed.as_ref()).await?;
                Ok((dir, sha))
            }
        }
    }

    async fn svn(
        &self,
        dir: &Path,
        source: &SourceConfig,
        revision: SvnRevision,
    ) -> Result<(), BuildError> {
        let url = format!(
            "{}{}",
            source.url.trim_end_matches('/'),
            source.path.as_deref().unwrap_or("")
        );
        let rev = format!("-r{revision}");
        let user = self.cfg.svn_username.clone().unwrap_or_default();
        let password = self.cfg.svn_password.as_ref().map(|p| p.expose().clone());
        // An https:// server is trusted through its CA only (`build.svn_ca_file`),
        // never by accepting whatever certificate it shows.
        let ca = self
            .cfg
            .svn_ca_file
            .as_ref()
            .map(|f| format!("servers:global:ssl-authority-files={}", f.display()));
        let mut base = vec!["--non-interactive", "--no-auth-cache"];
        if let Some(ca) = &ca {
            base.extend(["--config-option", ca.as_str()]);
        }
        let mut auth = base.clone();
        if !user.is_empty() {
            auth.extend(["--username", user.as_str()]);
        }
        if password.is_some() {
            auth.push("--password-from-stdin");
        }
        // `svn:externals` pull other repositories' (or paths') code into the build:
        // only where the project says so.
        if !source.allow_externals {
            auth.push("--ignore-externals");
        }
        let pw = password.as_deref();
        let t = self.timeout;
        let d = dir.to_string_lossy().into_owned();
        if dir.join(".svn").is_dir() {
            // Reuse: undo anything a crashed build left, then move to the revision.
            let reused = async {
                let cleanup = [
                    &["cleanup", "--remove-unversioned", "--remove-ignored"],
                    &base[..],
                ];
                svn(&cleanup.concat(), &[&d], None, t).await?;
                svn(&[&["revert", "-R"], &base[..]].concat(), &[&d], None, t).await?;
                let switch = [&["switch", "--ignore-ancestry", &rev], &auth[..]].concat();
                svn(&switch, &[&url, &d], pw, t).await
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
        svn(
            &[&["checkout", &rev], &auth[..]].concat(),
            &[&url, &d],
            pw,
            t,
        )
        .await
        .map_err(svn_error)?;
        Ok(())
    }

    /// Check out `rev` after proving it is on the branch (or tag) it was pushed to, or
    /// for a manual run on a branch the project builds; returns the commit id.
    async fn git(
        &self,
        dir: &Path,
        source: &SourceConfig,
        rev: &GitRevision,
        claimed: Option<&PushedRef>,
    ) -> Result<String, BuildError> {
        if dir.join(".git").is_dir() {
            match self.git_attempt(dir, source, rev, claimed).await {
                Ok(sha) => return Ok(sha),
                Err(Stop::Refused(e)) => return Err(e),
                Err(Stop::Tool(f)) => tracing::warn!(
                    "working copy {} unusable ({}), checking out afresh",
                    dir.display(),
                    f.detail
                ),
            }
        }
        fresh(dir)?;
        let d = dir.to_string_lossy().into_owned();
        git(None, self.timeout, &["init", "-q"], &[&d])
            .await
            .map_err(git_error)?;
        match self.git_attempt(dir, source, rev, claimed).await {
            Ok(sha) => Ok(sha),
            Err(Stop::Refused(e)) => Err(e),
            Err(Stop::Tool(f)) => Err(git_error(f)),
        }
    }

    async fn git_attempt(
        &self,
        dir: &Path,
        source: &SourceConfig,
        rev: &GitRevision,
        claimed: Option<&PushedRef>,
    ) -> Result<String, Stop> {
        let t = self.timeout;
        let here = Some(dir);
        let _ = git(here, t, &["remote", "remove"], &["origin"]).await;
        git(here, t, &["remote", "add"], &["origin", &source.url]).await?;
        let remote = RemoteRefs::list(dir, t).await?;
        let refused = |why: String| Stop::Refused(BuildError::Refused(why));
        let (commit, tie) = match rev {
            GitRevision::Ref(r) => remote.resolve(r).map_err(refused)?,
            GitRevision::Commit(c) => (
                c.to_string(),
                match claimed {
                    Some(PushedRef::Branch(b)) => Tie::Branch(b.clone()),
                    Some(PushedRef::Tag(t)) => Tie::Tag(t.clone()),
                    None => Tie::AnyBranch,
                },
            ),
        };
        let refspecs = remote.refspecs(source, &tie).map_err(refused)?;
        let mut fetch = vec!["origin"];
        fetch.extend(refspecs.iter().map(String::as_str));
        git(here, t, &["fetch", "-q"], &fetch).await?;
        let peeled = format!("{commit}^{{commit}}");
        let Ok(found) = git(here, t, &["rev-list", "--max-count=1"], &[&peeled]).await else {
            return Err(refused(tie.not_on(&commit, &remote.tips(source, &tie))));
        };
        if !tie
            .holds(dir, t, found.trim(), &remote.tips(source, &tie))
            .await?
        {
            return Err(refused(tie.not_on(&commit, &remote.tips(source, &tie))));
        }
        git(
            here,
            t,
            &["switch", "-q", "--discard-changes", "--detach"],
            &[&commit],
        )
        .await?;
        git(here, t, &["clean", "-q", "-ffdx"], &[]).await?;
        Ok(match rev {
            GitRevision::Commit(_) => commit,
            // A name is recorded as the commit it named (a tag peeled to its commit).
            GitRevision::Ref(_) => found.trim().to_owned(),
        })
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

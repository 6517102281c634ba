//! A run's place among the project's runs, learnt from the checkout (see
//! `ferry_shared::order`): what the updater compares to decide "older", instead of the
//! commit date a committer chooses.

use crate::error::BuildError;
use ferry_shared::config::{SourceConfig, SourceKind};
use ferry_shared::event::SourceChanged;
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_shared::revision::SvnRevision;
use ferry_vcs::{git as git_cmd, run};
use std::path::Path;
use std::time::Duration;

/// The place of `source.revision`, checked out in `dir`. A run an operator started
/// (`source = "manual"`: `ferry deploy`, `/hooks/manual`, a rebuild to roll back) is
/// marked explicit: it deploys where asked even over something newer.
pub async fn order(
    kind: &SourceConfig,
    dir: &Path,
    source: &SourceChanged,
    timeout: Duration,
) -> Result<RunOrder, BuildError> {
    let mut order = match kind.kind {
        SourceKind::Svn => svn(&source.revision)?,
        SourceKind::Git => git(dir, &source.revision, timeout).await?,
    };
    order.explicit = source.source == "manual";
    Ok(order)
}

/// The revision number the server gave the commit.
fn svn(revision: &str) -> Result<RunOrder, BuildError> {
    SvnRevision::parse(revision)
        .map(|r| RunOrder::new(OrderScale::Svn, r.get()))
        .map_err(|e| not_ordered(e.to_string(), true))
}

/// The number of commits reachable from `sha`: strictly greater than any ancestor's, so
/// an ancestor of what runs is older whatever its date. Needs the full history, which
/// the checkout fetches (never shallow).
async fn git(dir: &Path, sha: &str, timeout: Duration) -> Result<RunOrder, BuildError> {
    // A git failure after a good checkout is worth another try.
    let failed = |f: ferry_vcs::Failed| not_ordered(format!("{}: {}", f.what, f.detail), false);
    // No operand, so no marker: `rev-parse` would echo `--end-of-options` back.
    let shallow = run(
        "git",
        &["rev-parse", "--is-shallow-repository"],
        Some(dir),
        None,
        timeout,
    )
    .await
    .map_err(failed)?;
    if shallow.trim() == "true" {
        return Err(not_ordered(
            "the checkout is shallow, so its commits cannot be counted; remove the working copy under build.work_dir".into(),
            true,
        ));
    }
    let count = git_cmd(Some(dir), timeout, &["rev-list", "--count"], &[sha])
        .await
        .map_err(failed)?;
    count
        .trim()
        .parse()
        .map(|n| RunOrder::new(OrderScale::Git, n))
        .map_err(|_| {
            not_ordered(
                format!("git rev-list --count answered `{}`", count.trim()),
                true,
            )
        })
}

fn not_ordered(detail: String, permanent: bool) -> BuildError {
    BuildError::Checkout {
        hint: "cannot tell the revision's place among the project's runs (the deploy order)".into(),
        detail,
        permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svn_revision_is_its_own_place_and_junk_is_refused() {
        assert_eq!(svn("42").unwrap(), RunOrder::new(OrderScale::Svn, 42));
        for bad in ["", "HEAD", "+4", "-1", "99999999999999999999999"] {
            assert!(svn(bad).is_err(), "{bad}");
        }
    }

    fn sh(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(ok.status.success(), "{ok:?}");
    }

    fn head(dir: &Path) -> String {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[tokio::test]
    async fn a_git_commit_is_ahead_of_its_ancestors_whatever_their_dates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let t = Duration::from_secs(20);
        sh(d, &["init", "-q", "-b", "main"]);
        let commit = |date: &str| {
            sh(
                d,
                &["commit", "-q", "--allow-empty", "-m", "c", "--date", date],
            )
        };
        commit("2099-01-01T00:00:00Z");
        let future = head(d);
        commit("2001-01-01T00:00:00Z");
        let old_date = head(d);
        let a = git(d, &future, t).await.unwrap();
        let b = git(d, &old_date, t).await.unwrap();
        assert!(b.value > a.value, "{a:?} {b:?}");
        // Never read as an option.
        assert!(git(d, "--output=/tmp/x", t).await.is_err());
    }
}

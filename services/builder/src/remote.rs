//! What the origin of a git project has (`git ls-remote`): resolving a branch or tag
//! name to its commit, which branches and tags the project builds, and whether a
//! commit is on them. A push names its branch and commit separately; nothing is built
//! unless the commit really is on that branch (or is what that tag points to).

use ferry_shared::config::SourceConfig;
use ferry_shared::revision::{GitRef, RefName, glob};
use ferry_vcs::{Failed, git};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the commit must be on.
#[derive(Debug)]
pub enum Tie {
    Branch(RefName),
    Tag(RefName),
    /// A commit named by hand: any branch the project builds.
    AnyBranch,
}

pub struct RemoteRefs {
    /// Full ref name (`refs/heads/main`) to the object it names.
    refs: BTreeMap<String, String>,
    /// The branch the origin's `HEAD` points to.
    default_branch: Option<String>,
}

impl RemoteRefs {
    /// The refs of the `origin` remote of the repository in `dir`.
    pub async fn list(dir: &Path, timeout: Duration) -> Result<Self, Failed> {
        let out = git(Some(dir), timeout, &["ls-remote", "--symref"], &["origin"]).await?;
        Ok(Self::parse(&out))
    }

    fn parse(out: &str) -> Self {
        let mut refs = BTreeMap::new();
        let mut default_branch = None;
        for line in out.lines() {
            let Some((left, name)) = line.split_once('\t') else {
                continue;
            };
            if let Some(target) = left.strip_prefix("ref: ") {
                if name == "HEAD" {
                    default_branch = target.strip_prefix("refs/heads/").map(str::to_owned);
                }
            } else if !name.ends_with("^{}") {
                refs.insert(name.to_owned(), left.to_owned());
            }
        }
        Self {
            refs,
            default_branch,
        }
    }

    /// The commit (or tag object) a name points to on the origin, and what it is.
    pub fn resolve(&self, r: &GitRef) -> Result<(String, Tie), String> {
        let branch = |n: &RefName| self.refs.get(&format!("refs/heads/{n}")).cloned();
        let tag = |n: &RefName| self.refs.get(&format!("refs/tags/{n}")).cloned();
        match r {
            GitRef::Branch(n) => branch(n)
                .map(|s| (s, Tie::Branch(n.clone())))
                .ok_or_else(|| format!("branch `{n}` does not exist on the origin")),
            GitRef::Tag(n) => tag(n)
                .map(|s| (s, Tie::Tag(n.clone())))
                .ok_or_else(|| format!("tag `{n}` does not exist on the origin")),
            GitRef::Either(n) => match (branch(n), tag(n)) {
                (Some(_), Some(_)) => Err(format!(
                    "`{n}` is both a branch and a tag on the origin: say refs/heads/{n} or refs/tags/{n}"
                )),
                (Some(s), None) => Ok((s, Tie::Branch(n.clone()))),
                (None, Some(s)) => Ok((s, Tie::Tag(n.clone()))),
                (None, None) => Err(format!("no branch or tag `{n}` exists on the origin")),
            },
        }
    }

    /// Whether the project builds `branch`: one of `source.branches`, or without those
    /// the origin's default branch (as the receiver's filter, which uses the forge's).
    fn builds_branch(&self, source: &SourceConfig, branch: &str) -> bool {
        if !source.branches.is_empty() {
            return source.branches.iter().any(|p| glob(p, branch));
        }
        match &self.default_branch {
            Some(d) => d == branch,
            None => branch == "main" || branch == "master",
        }
    }

    fn branch_filter(&self, source: &SourceConfig) -> String {
        if source.branches.is_empty() {
            format!(
                "the default branch `{}`",
                self.default_branch.as_deref().unwrap_or("main")
            )
        } else {
            format!("projects.<name>.source.branches {:?}", source.branches)
        }
    }

    /// The branches a commit of this tie may be on (that exist on the origin).
    pub fn tips(&self, source: &SourceConfig, tie: &Tie) -> Vec<RefName> {
        let exists = |b: &RefName| self.refs.contains_key(&format!("refs/heads/{b}"));
        match tie {
            Tie::Branch(b) => [b.clone()].into_iter().filter(exists).collect(),
            Tie::Tag(_) => vec![],
            Tie::AnyBranch => self
                .refs
                .keys()
                .filter_map(|r| r.strip_prefix("refs/heads/"))
                .filter(|b| self.builds_branch(source, b))
                .filter_map(|b| RefName::parse(b).ok())
                .collect(),
        }
    }

    /// What to fetch to check the tie, or why the project does not build it.
    pub fn refspecs(&self, source: &SourceConfig, tie: &Tie) -> Result<Vec<String>, String> {
        match tie {
            Tie::Branch(b) if !self.builds_branch(source, b.as_str()) => Err(format!(
                "branch `{b}` is not built by this project (it builds {})",
                self.branch_filter(source)
            )),
            Tie::Tag(t) if !source.tags.iter().any(|p| glob(p, t.as_str())) => Err(format!(
                "tag `{t}` does not match projects.<name>.source.tags {:?}",
                source.tags
            )),
            Tie::Tag(t) if !self.refs.contains_key(&format!("refs/tags/{t}")) => {
                Err(format!("tag `{t}` does not exist on the origin"))
            }
            Tie::Tag(t) => Ok(vec![format!("+refs/tags/{t}:refs/tags/{t}")]),
            Tie::Branch(_) | Tie::AnyBranch => {
                let tips = self.tips(source, tie);
                if tips.is_empty() {
                    return Err(match tie {
                        Tie::Branch(b) => format!(
                            "branch `{b}` does not exist on the origin (deleted since the push?)"
                        ),
                        _ => format!(
                            "none of the branches this project builds ({}) exists on the origin",
                            self.branch_filter(source)
                        ),
                    });
                }
                Ok(tips
                    .iter()
                    .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
                    .collect())
            }
        }
    }
}

impl Tie {
    /// Whether `commit` (a commit id, fetched) is on the tie's branch tips, or is what
    /// its tag points to.
    pub async fn holds(
        &self,
        dir: &Path,
        timeout: Duration,
        commit: &str,
        tips: &[RefName],
    ) -> Result<bool, Failed> {
        let here = Some(dir);
        if let Tie::Tag(t) = self {
            let target = format!("refs/tags/{t}^{{commit}}");
            let at = git(here, timeout, &["rev-list", "--max-count=1"], &[&target]).await?;
            return Ok(at.trim() == commit);
        }
        for tip in tips {
            // Nothing reachable from `commit` but not from the tip: it is on the branch
            // (the same answer as `git merge-base --is-ancestor`).
            let not_tip = format!("^refs/remotes/origin/{tip}");
            let outside = git(
                here,
                timeout,
                &["rev-list", "--max-count=1"],
                &[commit, &not_tip],
            )
            .await?;
            if outside.trim().is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Why `commit` is not built, for `build.failed`.
    pub fn not_on(&self, commit: &str, tips: &[RefName]) -> String {
        match self {
            Tie::Branch(b) => format!(
                "commit {commit} is not on branch `{b}` of the origin, which the push named: \
                 not built. Push the commit to `{b}` (or trigger a commit that is on it)"
            ),
            Tie::Tag(t) => format!(
                "tag `{t}` on the origin does not point to commit {commit}: not built. \
                 Trigger the tag's own commit"
            ),
            Tie::AnyBranch => format!(
                "commit {commit} is on none of the branches this project builds ({}): not built. \
                 Deploy a commit from one of them, or name the branch instead",
                tips.iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_remote_output_is_read() {
        let r = RemoteRefs::parse(
            "ref: refs/heads/trunk\tHEAD\n\
             aaaa\tHEAD\n\
             aaaa\trefs/heads/trunk\n\
             bbbb\trefs/tags/v1\n\
             cccc\trefs/tags/v1^{}\n\
             dddd\trefs/heads/v1\n",
        );
        assert_eq!(r.default_branch.as_deref(), Some("trunk"));
        assert_eq!(r.refs["refs/tags/v1"], "bbbb");
        let either = GitRef::parse("v1").unwrap();
        assert!(
            r.resolve(&either)
                .unwrap_err()
                .contains("both a branch and a tag")
        );
        let trunk = GitRef::parse("trunk").unwrap();
        assert_eq!(r.resolve(&trunk).unwrap().0, "aaaa");
    }
}

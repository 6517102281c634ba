//! `[projects.<name>.source]`: the repository a project is built from, and which of
//! its pushes start a run.

use super::problem::{Problem, Report};
use super::word::{self, words};
use serde::{Deserialize, Serialize};

words! {
    /// The version control system of a project's code.
    pub enum SourceKind ("a source kind") {
        Svn = "svn",
        Git = "git",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Checkout URL: the SVN repository root, or the git clone URL.
    pub url: String,
    /// How webhooks name the repository: GitLab's `path_with_namespace`, GitHub's and
    /// Gitea's `full_name` (e.g. `shop/web`). Hooks also match on `url`.
    pub repository: Option<String>,
    /// SVN repository UUID (`svnadmin info`), matched besides `url`.
    pub uuid: Option<String>,
    /// Path prefix inside an SVN repository, e.g. `/trunk/shop`: only commits touching
    /// it start a run.
    pub path: Option<String>,
    /// Branches that trigger a run (git): exact names or `*` globs such as `release/*`;
    /// empty means the repository's default branch.
    pub branches: Vec<String>,
    /// Tags that trigger a run (`*` globs); empty means tag pushes are ignored.
    pub tags: Vec<String>,
    /// Changed-path filters (prefixes or `*` globs): a push touching none of them is
    /// ignored. Empty means every path counts. Several projects can share a repository.
    pub paths: Vec<String>,
    /// SVN: fetch `svn:externals` (other repositories' code) into the build; off by default.
    pub allow_externals: bool,
}

impl SourceConfig {
    /// What is wrong in the table at `at` (`projects.<name>.source`).
    pub(super) fn check(&self, at: &str, out: &mut Vec<Problem>) {
        if self.kind == SourceKind::Svn && !self.path.as_deref().unwrap_or("/").starts_with('/') {
            out.bad(
                format!("{at}.path"),
                "must start with `/`, e.g. `/trunk/shop`",
            );
        }
        if self.url.is_empty() {
            out.bad(format!("{at}.url"), "must not be empty");
        }
    }
}

/// The table as written: `kind` is `svn` or `git`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceFile {
    kind: String,
    url: String,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    allow_externals: bool,
}

impl SourceFile {
    pub(super) fn parse(self, at: &str, out: &mut Vec<Problem>) -> SourceConfig {
        // Git as the fallback: it has no checks of its own to report by mistake.
        let kind = word::parse(&self.kind, format!("{at}.kind"), SourceKind::Git, out);
        SourceConfig {
            kind,
            url: self.url,
            repository: self.repository,
            uuid: self.uuid,
            path: self.path,
            branches: self.branches,
            tags: self.tags,
            paths: self.paths,
            allow_externals: self.allow_externals,
        }
    }
}

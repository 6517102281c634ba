//! Which configured projects a trigger starts, and if none, why not (the sender sees
//! the reason in its hook log).

use crate::trigger::{ImagePush, Push, Reference, Source};
use ferry_shared::config::{FerryConfig, ProjectConfig, SourceKind};

/// The names of the projects this push starts, or why it starts none.
pub fn projects_for_push<'a>(cfg: &'a FerryConfig, push: &Push) -> Result<Vec<&'a str>, String> {
    let followers: Vec<(&String, &ProjectConfig)> = cfg
        .projects
        .iter()
        .filter(|(_, p)| follows(p, push))
        .collect();
    if followers.is_empty() {
        return Err(format!("no project follows repository {}", describe(push)));
    }
    let mut started = Vec::new();
    let mut reasons = Vec::new();
    for (name, project) in followers {
        match triggers(project, push) {
            Ok(()) => started.push(name.as_str()),
            Err(why) => reasons.push(format!("{name}: {why}")),
        }
    }
    if started.is_empty() {
        Err(reasons.join("; "))
    } else {
        Ok(started)
    }
}

/// The projects deploying this image (Harbor): the image must be on `registry.address`
/// (anything else would be pulled from a host Ferry does not trust) and its repository
/// must be a project's `image`.
pub fn projects_for_image<'a>(
    cfg: &'a FerryConfig,
    image: &ImagePush,
) -> Result<Vec<&'a str>, String> {
    let Some(registry) = &cfg.registry else {
        return Err("registry.address is not configured: Harbor pushes start nothing".into());
    };
    if !image.registry.eq_ignore_ascii_case(registry.address.trim()) {
        return Err(format!(
            "image `{}` is on registry `{}`, not on registry.address `{}`",
            image.repository, image.registry, registry.address
        ));
    }
    let names: Vec<&str> = cfg
        .projects
        .iter()
        .filter(|(_, p)| p.image.eq_ignore_ascii_case(&image.repository))
        .map(|(n, _)| n.as_str())
        .collect();
    if names.is_empty() {
        Err(format!("no project deploys image `{}`", image.repository))
    } else {
        Ok(names)
    }
}

/// A project whose config repo a push changed, with the changed files (relative to
/// `config_repo.path`; empty when the sender did not list them all).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigFollower<'a> {
    pub project: &'a str,
    pub files: Vec<String>,
}

/// The projects whose config this push changes: the push is to their `config_repo`'s
/// URL and branch and touches their `path`. `Err` says why a project that keeps its
/// config in this repository is not started; `Ok(vec![])` when none does.
pub fn projects_for_config_push<'a>(
    cfg: &'a FerryConfig,
    push: &Push,
) -> Result<Vec<ConfigFollower<'a>>, String> {
    let mut started = Vec::new();
    let mut reasons = Vec::new();
    for (name, project) in &cfg.projects {
        let Some(repo) = &project.config_repo else {
            continue;
        };
        if push.source == Source::Svn
            || !push.repository_urls.iter().any(|u| same_url(u, &repo.url))
        {
            continue;
        }
        match &push.reference {
            Some(Reference::Branch(b)) if *b == repo.branch => {}
            _ => {
                reasons.push(format!(
                    "{name}: its config is on branch `{}`, not this push's",
                    repo.branch
                ));
                continue;
            }
        }
        let prefix = repo.path.as_deref().map(|p| p.trim_matches('/'));
        let files: Vec<String> = push
            .changed_paths
            .iter()
            .map(|c| c.trim_start_matches('/'))
            .filter_map(|c| match prefix.filter(|p| !p.is_empty()) {
                None => Some(c.to_owned()),
                Some(p) => c
                    .strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_owned),
            })
            .collect();
        if push.paths_complete && files.is_empty() {
            reasons.push(format!(
                "{name}: no changed file under `{}` in its config repo",
                prefix.unwrap_or("")
            ));
            continue;
        }
        let files = if push.paths_complete { files } else { vec![] };
        started.push(ConfigFollower {
            project: name.as_str(),
            files,
        });
    }
    if started.is_empty() && !reasons.is_empty() {
        Err(reasons.join("; "))
    } else {
        Ok(started)
    }
}

fn describe(push: &Push) -> String {
    push.repository
        .first()
        .or(push.repository_urls.first())
        .or(push.repository_uuid.as_ref())
        .map(|r| format!("`{r}`"))
        .unwrap_or_else(|| "(unnamed)".into())
}

fn follows(project: &ProjectConfig, push: &Push) -> bool {
    let s = &project.source;
    let url_matches = push.repository_urls.iter().any(|u| same_url(u, &s.url));
    match (s.kind, push.source) {
        (SourceKind::Svn, Source::Svn) => {
            url_matches
                || s.uuid
                    .as_ref()
                    .is_some_and(|u| Some(u) == push.repository_uuid.as_ref())
        }
        (SourceKind::Git, Source::Gitlab | Source::Github | Source::Gitea | Source::Git) => {
            url_matches
                || s.repository
                    .as_ref()
                    .is_some_and(|r| push.repository.iter().any(|n| n.eq_ignore_ascii_case(r)))
        }
        _ => false,
    }
}

fn triggers(project: &ProjectConfig, push: &Push) -> Result<(), String> {
    let s = &project.source;
    match &push.reference {
        Some(Reference::Branch(b)) => {
            let defaults = push.default_branch.iter().cloned().collect::<Vec<_>>();
            let patterns = if s.branches.is_empty() {
                &defaults
            } else {
                &s.branches
            };
            if patterns.is_empty() && b != "main" && b != "master" {
                return Err(format!("branch `{b}` is not the default branch"));
            }
            if !patterns.is_empty() && !patterns.iter().any(|p| glob(p, b)) {
                return Err(format!("branch `{b}` does not match {patterns:?}"));
            }
        }
        Some(Reference::Tag(t)) if !s.tags.iter().any(|p| glob(p, t)) => {
            return Err(format!("tag `{t}` does not match {:?}", s.tags));
        }
        Some(Reference::Tag(_)) | None => {}
    }
    if !push.paths_complete {
        return Ok(());
    }
    if let Some(prefix) = s.path.as_deref().filter(|p| *p != "/")
        && !push.changed_paths.iter().any(|c| under(c, prefix))
    {
        return Err(format!("no changed path under `{prefix}`"));
    }
    if !s.paths.is_empty()
        && !push
            .changed_paths
            .iter()
            .any(|c| s.paths.iter().any(|f| path_matches(f, c)))
    {
        return Err(format!("no changed path matches {:?}", s.paths));
    }
    Ok(())
}

fn same_url(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        u.trim()
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A path filter: a `*` glob, a directory prefix ending in `/`, or a file or directory name.
fn path_matches(filter: &str, path: &str) -> bool {
    let path = path.trim_start_matches('/');
    let filter = filter.trim_start_matches('/');
    if filter.contains('*') {
        glob(filter, path)
    } else if filter.ends_with('/') {
        path.starts_with(filter)
    } else {
        under(path, filter)
    }
}

/// The branch, tag and path globs: one definition, shared with the builder's branch check.
pub use ferry_shared::revision::glob;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("release/*", "release/1.2"));
        assert!(glob("v*", "v1.0.0"));
        assert!(glob("*", ""));
        assert!(glob("main", "main"));
        assert!(!glob("main", "main2"));
        assert!(!glob("release/*", "hotfix/1"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn path_filters() {
        assert!(path_matches("app/", "app/Http/Kernel.php"));
        assert!(path_matches("composer.json", "composer.json"));
        assert!(!path_matches("composer.json", "composer.lock"));
        assert!(path_matches("docs", "docs/readme.md"));
        assert!(path_matches("*.php", "app/x.php"));
        assert!(under("/trunk/shop/index.php", "/trunk/shop"));
        assert!(!under("/trunk/shopping/index.php", "/trunk/shop"));
    }
}

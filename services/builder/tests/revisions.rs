//! What the builder checks out: never an option smuggled in as a revision, a branch or
//! tag name resolved to its commit and recorded, a commit only if it is on the branch
//! it was pushed to (or the tag points to it), SVN externals only where allowed. Real
//! git repositories made here, real svnserve, real Docker and registry. (A branch name
//! built and pushed is proved in `tests/e2e`, `build_push.rs`.)

mod common;

use builder::checkout::Checkouts;
use common::*;
use ferry_shared::event::Event;
use ferry_testkit::harness_var;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn a_revision_that_is_an_option_runs_no_command() {
    let root = tempfile::tempdir().unwrap();
    let r = repo(root.path());
    let marker = root.path().join("pwned");
    let inject = format!("--upload-pack=touch {}", marker.display());
    let s = setup(
        &git_source(&r.url),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    );
    let checkouts = Checkouts {
        cfg: &s.cfg.build,
        timeout: Duration::from_secs(60),
    };
    let source = &s.cfg.projects["shop"].source;

    // Through the checkout code, as a revision and as the pushed reference.
    for event in [
        changed(&inject, None),
        changed(&r.two, Some(&inject)),
        changed(&format!("refs/heads/{inject}"), None),
    ] {
        let err = checkouts
            .code("shop", source, &event)
            .await
            .expect_err("an option as a revision was checked out")
            .to_string();
        assert!(err.contains("refused"), "{err}");
        assert!(err.contains("upload-pack"), "names the value: {err}");
        assert!(!marker.exists(), "the injected command ran");
    }

    // The layer below (every git call): a value after --end-of-options stays a value
    // even if a caller forgot to parse it.
    let work = root.path().join("raw");
    std::fs::create_dir_all(&work).unwrap();
    let t = Duration::from_secs(30);
    ferry_vcs::git(Some(&work), t, &["init", "-q"], &[])
        .await
        .unwrap();
    ferry_vcs::git(Some(&work), t, &["remote", "add"], &["origin", &r.url])
        .await
        .unwrap();
    for (options, operands) in [
        (vec!["fetch", "-q"], vec!["origin", inject.as_str()]),
        (vec!["fetch", "-q"], vec![inject.as_str()]),
        (vec!["ls-remote"], vec![inject.as_str()]),
        (vec!["switch", "-q", "--detach"], vec![inject.as_str()]),
        (vec!["rev-list", "--max-count=1"], vec![inject.as_str()]),
        (
            vec!["merge-base", "--is-ancestor"],
            vec![inject.as_str(), "HEAD"],
        ),
    ] {
        let failed = ferry_vcs::git(Some(&work), t, &options, &operands).await;
        assert!(failed.is_err(), "git {options:?} {operands:?} succeeded");
        assert!(!marker.exists(), "git {options:?} ran the injected command");
    }

    // SVN: an option as a revision is refused before svn runs, with a clear reason.
    let svn_root = tempfile::tempdir().unwrap();
    let url = svn_project(svn_root.path(), 1);
    let s = setup(
        &svn_source(&url),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    );
    let checkouts = Checkouts {
        cfg: &s.cfg.build,
        timeout: Duration::from_secs(60),
    };
    let source = &s.cfg.projects["shop"].source;
    let svn_inject = format!(
        "--config-option=config:tunnels:ssh=touch {}",
        marker.display()
    );
    for rev in [svn_inject.as_str(), "-5", "0", "HEAD", "1:2"] {
        let err = checkouts
            .code("shop", source, &changed(rev, None))
            .await
            .expect_err("a bad SVN revision was checked out")
            .to_string();
        assert!(err.contains("not an SVN revision"), "{rev}: {err}");
        assert!(!marker.exists());
    }
}

#[tokio::test]
async fn a_commit_not_on_its_branch_fails_the_build_saying_so() {
    let root = tempfile::tempdir().unwrap();
    let r = repo(root.path());
    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(
        &git_source(&r.url),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    )
    .await;
    for (event, why) in [
        // A push saying `main` with the commit of another branch.
        (
            changed(&r.side, Some("main")),
            format!("commit {} is not on branch `main`", r.side),
        ),
        // A manual run of a commit on no branch the project builds.
        (
            changed(&r.side, None),
            format!("commit {} is on none of the branches", r.side),
        ),
        // A tag push whose tag points elsewhere.
        (
            changed(&r.two, Some("tags/v1")),
            format!("tag `v1` on the origin does not point to commit {}", r.two),
        ),
        // A branch the project does not build, by name.
        (
            changed("side", None),
            "branch `side` is not built by this project".to_owned(),
        ),
    ] {
        let run = publish(&s, event).await.run_id;
        let failed = tap
            .expect_run("build.failed", run, Duration::from_secs(120))
            .await
            .unwrap();
        let Event::BuildFailed(f) = &failed.event else {
            panic!()
        };
        assert!(f.reason.contains(&why), "{why}: {}", f.reason);
        assert_eq!(f.attempts, 1, "a refused revision must not be retried");
    }
    assert!(
        !tap.saw("image.built", |_| true),
        "a commit off its branch was built"
    );
    // The same commit pushed to the branch it is on builds.
    let run = publish(&s, changed(&r.one, Some("main"))).await.run_id;
    tap.expect_run("image.built", run, Duration::from_secs(120))
        .await
        .unwrap();
    stages.stop().await;
}

/// `trunk/shop` has `svn:externals` pulling `trunk/secret` of the same repository in.
fn svn_with_externals(root: &Path) -> String {
    let url = svn_project(root, 1);
    let wc = root.join("wc");
    std::fs::create_dir_all(wc.join("trunk/secret")).unwrap();
    std::fs::write(wc.join("trunk/secret/key.txt"), "not for this build\n").unwrap();
    svn(&wc, &["add", "-q", "trunk/secret"]);
    svn(
        &wc,
        &[
            "propset",
            "-q",
            "svn:externals",
            "^/trunk/secret vendor",
            "trunk/shop",
        ],
    );
    svn(&wc, &["commit", "-q", "-m", "externals"]);
    url
}

#[tokio::test]
async fn svn_externals_are_not_fetched_unless_the_project_allows_them() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_with_externals(root.path());
    for (allow, fetched) in [(false, false), (true, true), (false, false)] {
        let source = format!(
            "{{ kind = \"svn\", url = \"{url}\", path = \"/trunk/shop\", allow_externals = {allow} }}"
        );
        let s = setup(
            &source,
            &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
            DOCKERFILE,
        );
        let checkouts = Checkouts {
            cfg: &s.cfg.build,
            timeout: Duration::from_secs(60),
        };
        let (dir, rev) = checkouts
            .code("shop", &s.cfg.projects["shop"].source, &changed("2", None))
            .await
            .unwrap();
        assert_eq!(rev, "2");
        assert!(dir.join("index.html").is_file());
        assert_eq!(
            dir.join("vendor/key.txt").exists(),
            fetched,
            "allow_externals = {allow}"
        );
    }
}

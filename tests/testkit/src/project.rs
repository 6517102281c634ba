//! Test projects as a team would have them: code in SVN (or git), and the ops-owned
//! config repo in git with the Dockerfile, the production `.env` and nginx config.

use crate::{harness_var, unique_namespace};
use std::path::Path;
use std::process::Command;

pub const DB_PASSWORD: &str = "prod-db-pa55word-7f3a";
/// A real secret under a key that does not say so (`K=`): found by its look.
pub const SHORT_KEYED_SECRET: &str = "9fQ2xL7pZ3vR8tY1mW4s";

pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn svn(dir: &Path, args: &[&str]) -> String {
    let user = harness_var("FERRY_TEST_SVN_USER");
    let pass = harness_var("FERRY_TEST_SVN_PASSWORD");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--username",
        &user,
        "--password",
        &pass,
        "--non-interactive",
        "--no-auth-cache",
    ]);
    run(dir, "svn", &all)
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=Ops", "-c", "user.email=ops@example.com"];
    all.extend_from_slice(args);
    run(dir, "git", &all)
}

/// The ops-owned config repo: Dockerfile, production .env, nginx config.
pub fn config_repo(root: &Path, dockerfile: &str) -> String {
    let dir = root.join("config-repo");
    std::fs::create_dir_all(dir.join("shop/env")).unwrap();
    std::fs::create_dir_all(dir.join("shop/nginx")).unwrap();
    std::fs::write(dir.join("shop/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("shop/env/production.env"),
        format!(
            "APP_ENV=production\nDB_PASSWORD={DB_PASSWORD}\nDB_CHARSET=utf8mb4\nDB_PORT=3306\n\
             K={SHORT_KEYED_SECRET}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("shop/nginx/site.conf"),
        "server { listen 18080; }\n",
    )
    .unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "config"]);
    format!("file://{}", dir.display())
}

pub const DOCKERFILE: &str = "FROM ferry-test/busybox:1\nARG FERRY_REVISION\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo revision=$FERRY_REVISION > /app/REVISION\"]\nCMD [\"/bin/cat\", \"/app/index.html\"]\n";

/// An SVN repository whose /trunk/shop has `commits` revisions of index.html.
/// Commit a new version of `trunk/shop/index.html` in the working copy `root/wc`.
pub fn svn_commit_index(root: &Path, content: &str) {
    let wc = root.join("wc");
    std::fs::write(wc.join("trunk/shop/index.html"), content).unwrap();
    svn(&wc, &["commit", "-q", "-m", "change index.html"]);
}

/// An SVN repository (working copy in `root/wc`) whose /trunk/shop has `commits` revisions.
pub fn svn_project(root: &Path, commits: u32) -> String {
    let name = format!("b{}", &unique_namespace()[1..9]);
    let script = harness_var("FERRY_TEST_SVN_REPO_SCRIPT");
    let url = run(root, "bash", &[&script, "create", &name]);
    svn(root, &["checkout", "-q", &url, "wc"]);
    let wc = root.join("wc");
    std::fs::create_dir_all(wc.join("trunk/shop")).unwrap();
    std::fs::write(wc.join("trunk/shop/.dockerignore"), "notes.txt\n").unwrap();
    std::fs::write(wc.join("trunk/shop/notes.txt"), "not for the image\n").unwrap();
    for i in 1..=commits {
        std::fs::write(
            wc.join("trunk/shop/index.html"),
            format!("<h1>shop r{i}</h1>\n"),
        )
        .unwrap();
        if i == 1 {
            svn(&wc, &["add", "-q", "trunk"]);
        }
        svn(&wc, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    url
}

/// An SVN repository (working copy in `root/wc`) with one folder per project under
/// /trunk, each a small web app whose Dockerfile ends with `RUN <run_step>` (exec form,
/// e.g. `["/bin/sleep", "2"]`). Its URL.
pub fn svn_apps(root: &Path, names: &[String], run_step: &str) -> String {
    let script = harness_var("FERRY_TEST_SVN_REPO_SCRIPT");
    let repo = format!("m{}", &unique_namespace()[1..9]);
    let url = run(root, "bash", &[&script, "create", &repo]);
    svn(root, &["checkout", "-q", &url, "wc"]);
    for name in names {
        let app = root.join("wc/trunk").join(name);
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("Dockerfile"),
            format!("FROM ferry-test/busybox:1\nCOPY . /www\nRUN {run_step}\n"),
        )
        .unwrap();
        std::fs::write(app.join("index.html"), format!("{name}\n")).unwrap();
    }
    svn(&root.join("wc"), &["add", "-q", "trunk"]);
    svn(&root.join("wc"), &["commit", "-q", "-m", "apps"]);
    url
}

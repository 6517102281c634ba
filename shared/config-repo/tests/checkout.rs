//! The config repo checked out from a real git repository: at the branch's latest
//! commit, updated in place, and a missing folder or repository named.

use ferry_config_repo::{ConfigRepoError, checkout, config_secrets};
use ferry_shared::config::{ConfigRepo, FerryConfig};
use ferry_testkit::project::{DB_PASSWORD, config_repo, git};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn repo(url: &str, path: Option<&str>) -> ConfigRepo {
    ConfigRepo {
        url: url.to_owned(),
        branch: "main".into(),
        path: path.map(str::to_owned),
        files: [
            ("env/production.env", ".env"),
            ("nginx/site.conf", "nginx.conf"),
        ]
        .into_iter()
        .map(|(f, t)| (f.to_owned(), t.to_owned()))
        .collect(),
        secret_files: None,
        secret_keys: vec![],
        plain_keys: vec![],
    }
}

#[tokio::test]
async fn the_branch_is_checked_out_at_its_latest_commit_and_updated_in_place() {
    let root = tempfile::tempdir().unwrap();
    let url = config_repo(root.path(), "FROM scratch\n");
    let origin = root.path().join("config-repo");
    let dir = root.path().join("work/shop/config");
    let first = checkout(&dir, &repo(&url, Some("/shop/")), T, None)
        .await
        .unwrap();
    assert_eq!(first.root, dir.join("shop"));
    assert_eq!(first.commit, git(&origin, &["rev-parse", "HEAD"]));
    assert!(first.root.join("env/production.env").is_file());

    std::fs::write(
        origin.join("shop/nginx/site.conf"),
        "server { listen 9; }\n",
    )
    .unwrap();
    git(&origin, &["commit", "-q", "-am", "port 9"]);
    // A file left behind by a crash is discarded.
    std::fs::write(first.root.join("leftover"), "x").unwrap();
    let second = checkout(&dir, &repo(&url, Some("shop")), T, None)
        .await
        .unwrap();
    assert_eq!(second.commit, git(&origin, &["rev-parse", "HEAD"]));
    assert_ne!(second.commit, first.commit);
    assert!(!second.root.join("leftover").exists());
    let conf = std::fs::read_to_string(second.root.join("nginx/site.conf")).unwrap();
    assert!(conf.contains("listen 9"), "{conf}");
}

#[tokio::test]
async fn a_missing_folder_or_repository_says_what_to_check() {
    let root = tempfile::tempdir().unwrap();
    let url = config_repo(root.path(), "FROM scratch\n");
    let dir = root.path().join("work/shop/config");
    let e = checkout(&dir, &repo(&url, Some("blog")), T, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ConfigRepoError::Checkout(_)), "{e:?}");
    assert!(
        e.to_string().contains("no folder `blog` on branch main"),
        "{e}"
    );

    let gone = format!("file://{}", root.path().join("gone").display());
    let e = checkout(&dir, &repo(&gone, None), T, None)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config repo checkout failed: git clone failed"),
        "{e}"
    );
}

#[tokio::test]
async fn the_secrets_are_the_values_of_the_secret_files() {
    let root = tempfile::tempdir().unwrap();
    let url = config_repo(root.path(), "FROM scratch\n");
    let text = format!(
        "[build]\nwork_dir = {:?}\n[projects.shop]\nimage = \"shop/web\"\n\
         source = {{ kind = \"git\", url = \"https://example.com/shop.git\" }}\n",
        root.path().join("work")
    );
    let cfg = FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap();
    let secrets = config_secrets(&cfg, "shop", &repo(&url, Some("shop")), "tester-config")
        .await
        .unwrap();
    assert!(secrets.iter().any(|s| s == DB_PASSWORD), "{secrets:?}");
    assert!(!secrets.iter().any(|s| s.contains("listen")), "{secrets:?}");
    assert!(root.path().join("work/shop/tester-config/.git").is_dir());
}

#[tokio::test]
async fn a_pushed_config_commit_must_be_on_the_branch() {
    let root = tempfile::tempdir().unwrap();
    let url = config_repo(root.path(), "FROM scratch\n");
    let origin = root.path().join("config-repo");
    let dir = root.path().join("work/shop/config");
    let pushed = git(&origin, &["rev-parse", "HEAD"]);
    let id = |c: &str| ferry_shared::revision::CommitId::parse(c).unwrap();
    // A later push is fine: the tip is built, and it contains the pushed commit.
    std::fs::write(
        origin.join("shop/nginx/site.conf"),
        "server { listen 7; }\n",
    )
    .unwrap();
    git(&origin, &["commit", "-q", "-am", "port 7"]);
    let c = checkout(&dir, &repo(&url, Some("shop")), T, Some(&id(&pushed)))
        .await
        .unwrap();
    assert_eq!(c.commit, git(&origin, &["rev-parse", "HEAD"]));
    // A commit only on another branch (or nowhere) is refused, naming it.
    git(&origin, &["switch", "-q", "-c", "elsewhere"]);
    std::fs::write(
        origin.join("shop/env/production.env"),
        "DB_PASSWORD=stolen\n",
    )
    .unwrap();
    git(&origin, &["commit", "-q", "-am", "not on main"]);
    let aside = git(&origin, &["rev-parse", "HEAD"]);
    git(&origin, &["switch", "-q", "main"]);
    for bad in [aside.as_str(), "1234567890123456789012345678901234567890"] {
        let e = checkout(&dir, &repo(&url, Some("shop")), T, Some(&id(bad)))
            .await
            .unwrap_err();
        assert!(matches!(e, ConfigRepoError::NotOnBranch { .. }), "{e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
}

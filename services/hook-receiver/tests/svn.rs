//! A real svnserve repository with the shipped post-commit script installed:
//! `svn commit` → one `source.changed` on the bus with the right revision and author.

mod common;

use common::*;
use ferry_shared::event::Event;
use ferry_testkit::{Tap, amqp_url, harness_var, unique_namespace};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn svn(wc: &Path, args: &[&str]) -> String {
    run(Command::new("svn")
        .args(args)
        .args([
            "--username",
            &harness_var("FERRY_TEST_SVN_USER"),
            "--password",
            &harness_var("FERRY_TEST_SVN_PASSWORD"),
        ])
        .args(["--non-interactive", "--no-auth-cache"])
        .current_dir(wc))
}

/// A fresh repository with the hook installed, reporting to `hook_url`.
fn repository(hook_url: &str) -> (String, PathBuf) {
    let name = format!("r{}", &unique_namespace()[1..9]);
    let url = run(Command::new("bash")
        .arg(harness_var("FERRY_TEST_SVN_REPO_SCRIPT"))
        .args(["create", &name]));
    let repo = PathBuf::from(harness_var("FERRY_TEST_SVN_ROOT")).join(&name);
    let hook = repo.join("hooks/post-commit");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/hooks/svn-post-commit"
        ),
        &hook,
    )
    .unwrap();
    std::fs::write(
        repo.join("conf/ferry-hook.conf"),
        // TMPDIR: payloads the hook keeps after a failure stay with the test's repository.
        format!(
            "FERRY_URL={hook_url}\nFERRY_TOKEN={SVN_TOKEN}\nFERRY_REPO_URL={url}\nTMPDIR={}\n",
            repo.display()
        ),
    )
    .unwrap();
    (url, repo)
}

#[tokio::test]
async fn svn_commit_through_the_shipped_hook_starts_a_run() {
    let ns = unique_namespace();
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    // The repository URL must be in the config before the receiver starts: bind first.
    let listener_port = ferry_testkit::free_port();
    let hook_url = format!("http://127.0.0.1:{listener_port}/hooks/svn");
    let (url, repo) = repository(&hook_url);
    let cfg = config(&amqp_url(), &ns, &url, "");
    let mut cfg = (*cfg).clone();
    cfg.services.get_mut("hook_receiver").unwrap().listen =
        Some(format!("127.0.0.1:{listener_port}").parse().unwrap());
    let rx = start(std::sync::Arc::new(cfg)).await;

    let wc = tempfile::tempdir().unwrap();
    svn(wc.path(), &["checkout", &url, "wc"]);
    let wc = wc.path().join("wc");
    std::fs::create_dir_all(wc.join("trunk/shop")).unwrap();
    std::fs::write(wc.join("trunk/shop/index.php"), "<?php echo 'r1';\n").unwrap();
    svn(&wc, &["add", "trunk"]);
    svn(
        &wc,
        &[
            "commit",
            "-m",
            "First \"shop\" commit\nwith a second line and ünïcode",
        ],
    );

    let event = tap
        .expect("source.changed", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(event.project, "svnshop");
    let Event::SourceChanged(s) = &event.event else {
        panic!()
    };
    assert_eq!(s.source, "svn");
    assert_eq!(s.revision, "1");
    assert_eq!(
        s.author.as_deref(),
        Some(harness_var("FERRY_TEST_SVN_USER").as_str())
    );
    assert_eq!(
        s.message.as_deref(),
        Some("First \"shop\" commit\nwith a second line and ünïcode")
    );
    assert!(
        s.changed_paths
            .contains(&"/trunk/shop/index.php".to_owned()),
        "{:?}",
        s.changed_paths
    );

    // A commit outside /trunk/shop starts nothing.
    std::fs::create_dir_all(wc.join("trunk/blog")).unwrap();
    std::fs::write(wc.join("trunk/blog/post.md"), "hello\n").unwrap();
    svn(&wc, &["add", "trunk/blog"]);
    svn(&wc, &["commit", "-m", "blog only"]);
    assert!(
        tap.drain(Duration::from_secs(2)).await.is_empty(),
        "a commit outside the project's path started a run"
    );

    // The next one in the path does, with its own revision.
    std::fs::write(wc.join("trunk/shop/index.php"), "<?php echo 'r3';\n").unwrap();
    svn(&wc, &["commit", "-m", "r3"]);
    let event = tap
        .expect("source.changed", Duration::from_secs(15))
        .await
        .unwrap();
    let Event::SourceChanged(s) = &event.event else {
        panic!()
    };
    assert_eq!(s.revision, "3");
    let log = std::fs::read_to_string(repo.join("ferry-hook.log")).unwrap_or_default();
    assert!(log.is_empty(), "the hook logged failures: {log}");
    rx.stop().await;
}

#[tokio::test]
async fn the_hook_never_blocks_a_commit_when_ferry_is_down() {
    let port = ferry_testkit::free_port(); // nothing listens here
    let (url, repo) = repository(&format!("http://127.0.0.1:{port}/hooks/svn"));
    let wc = tempfile::tempdir().unwrap();
    svn(wc.path(), &["checkout", &url, "wc"]);
    let wc = wc.path().join("wc");
    std::fs::write(wc.join("a.txt"), "a\n").unwrap();
    svn(&wc, &["add", "a.txt"]);
    let started = std::time::Instant::now();
    svn(&wc, &["commit", "-m", "while Ferry is down"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "commit took {:?}",
        started.elapsed()
    );
    // It gives up after its attempts (1 s + 2 s of backoff) and says so in its log.
    let logged = ferry_testkit::wait_until(Duration::from_secs(15), || async {
        std::fs::read_to_string(repo.join("ferry-hook.log"))
            .is_ok_and(|l| l.contains("not reported after 3 attempts"))
    })
    .await;
    assert!(logged, "no failure in the hook's log");
}

//! Real builds that fail: svnserve for the code, a git config repo, the Docker Engine.
//! Builds that go on to the registry are in the end-to-end crate (`tests/e2e`,
//! `build_push.rs`), which runs the pusher too.

mod common;

use common::*;
use ferry_shared::event::Event;
use ferry_testkit::harness_var;
use std::time::Duration;

#[tokio::test]
async fn a_failing_run_step_fails_the_build_naming_the_step() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let broken = "FROM ferry-test/busybox:1\nCOPY . /app\nRUN [\"/bin/sh\", \"-c\", \"echo compiling; echo missing dependency >&2; exit 3\"]\n";
    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(
        &svn_source(&url),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        broken,
    )
    .await;
    trigger(&s.cfg, "1").await;
    let failed = tap
        .expect("build.failed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::BuildFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("build step failed: Step 3/") && f.reason.contains(": RUN"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("missing dependency"), "{}", f.reason);
    assert!(f.reason.contains("non-zero code: 3"), "{}", f.reason);
    assert_eq!(f.attempts, 1, "a broken Dockerfile must not be retried");
    stages.stop().await;
}

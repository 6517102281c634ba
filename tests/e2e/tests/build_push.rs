//! Real builds pushed by the pusher: svnserve or git for the code, a git config repo,
//! the Docker Engine, and the registry with htpasswd auth. The images are pulled onto
//! another Docker host and run there, to read what really ended up inside.

mod common;

use common::build::*;
use ferry_shared::event::Event;
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_testkit::{docker_hosts, harness_var};
use std::time::Duration;

#[tokio::test]
async fn svn_revision_5_becomes_image_5_in_the_registry_with_the_ops_config_inside() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 5);
    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(
        &svn_source(&url),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    )
    .await;
    let started = trigger(&s.cfg, "5").await;

    let built = tap
        .expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImageBuilt(b) = &built.event else {
        panic!()
    };
    let registry = harness_var("FERRY_TEST_REGISTRY");
    assert_eq!(
        b.image,
        format!("{registry}/{}:5", s.cfg.projects["shop"].image)
    );
    // The run's place is the revision number the server gave, carried on from here.
    assert_eq!(
        built.order,
        Some(RunOrder::new(OrderScale::Svn, 5)),
        "{built:?}"
    );
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    assert!(
        p.image.starts_with(&format!("{}@sha256:", b.image)),
        "{}",
        p.image
    );
    assert_eq!(pushed.run_id, started.run_id);
    assert_eq!(pushed.order, built.order);

    // Inside the image: revision 5's code, the build arg, the config repo's files.
    let content = read_in_image(
        &p.image,
        &[
            "/app/index.html",
            "/app/REVISION",
            "/app/.env",
            "/app/docker/nginx.conf",
        ],
    );
    assert!(content.contains("<h1>shop r5</h1>"), "{content}");
    assert!(content.contains("revision=5"), "{content}");
    assert!(
        content.contains(&format!("DB_PASSWORD={DB_PASSWORD}")),
        "{content}"
    );
    assert!(content.contains("listen 18080"), "{content}");
    let ignored = std::process::Command::new("docker")
        .args([
            "-H",
            &docker_hosts()[1],
            "run",
            "--rm",
            "--network",
            "host",
            &p.image,
            "/bin/cat",
            "/app/notes.txt",
        ])
        .output()
        .unwrap();
    assert!(
        !ignored.status.success(),
        ".dockerignore'd file is in the image"
    );

    let l = labels(&p.image);
    assert_eq!(l["org.opencontainers.image.revision"], "5");
    assert_eq!(l["io.ferry.run-id"], started.run_id.to_string());
    assert_eq!(
        l["io.ferry.config-commit"].as_str().unwrap(),
        b.config_commit.as_deref().unwrap()
    );
    assert!(l["org.opencontainers.image.created"].is_string());
    // All of them from one LABEL step (the engine's labels option would add one per label).
    let history = ferry_testkit::docker(
        &docker_hosts()[1],
        None,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            &p.image,
        ],
    )
    .unwrap();
    assert_eq!(history.matches("LABEL ").count(), 1, "{history}");

    // The production password is in the image, and nowhere else.
    let log = std::fs::read_to_string(b.build_log.as_ref().unwrap()).unwrap();
    assert!(log.contains("Step 1/"), "{log}");
    assert!(!log.contains(DB_PASSWORD));
    for e in [&built, &pushed] {
        assert!(!String::from_utf8_lossy(&e.to_json()).contains(DB_PASSWORD));
    }
    assert!(!format!("{l}").contains(DB_PASSWORD));
    stages.stop().await;
    drop(s.dir);
}

#[tokio::test]
async fn a_wrong_registry_password_fails_the_push_at_once_naming_authentication() {
    let root = tempfile::tempdir().unwrap();
    let url = svn_project(root.path(), 1);
    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(&svn_source(&url), "wrong-password-123", DOCKERFILE).await;
    trigger(&s.cfg, "1").await;
    let failed = tap
        .expect("push.failed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::PushFailed(f) = &failed.event else {
        panic!()
    };
    assert!(f.reason.contains("refused the credentials"), "{}", f.reason);
    assert_eq!(f.attempts, 1, "authentication failures must not be retried");
    assert!(!f.reason.contains("wrong-password-123"));
    stages.stop().await;
}

#[tokio::test]
async fn a_git_commit_is_built_at_exactly_that_sha() {
    let root = tempfile::tempdir().unwrap();
    let code = root.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    git(&code, &["init", "-q", "-b", "main"]);
    std::fs::write(code.join("index.html"), "<h1>first</h1>\n").unwrap();
    git(&code, &["add", "."]);
    git(&code, &["commit", "-q", "-m", "first"]);
    let first = git(&code, &["rev-parse", "HEAD"]);
    std::fs::write(code.join("index.html"), "<h1>second</h1>\n").unwrap();
    git(&code, &["commit", "-q", "-am", "second"]);
    let Running {
        setup: s,
        mut tap,
        stages,
    } = start_build(
        &format!("{{ kind = \"git\", url = \"file://{}\" }}", code.display()),
        &harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        DOCKERFILE,
    )
    .await;
    trigger(&s.cfg, &first).await;
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImagePushed(p) = &pushed.event else {
        panic!()
    };
    assert!(
        p.image.contains(&format!(":{first}@sha256:")),
        "{}",
        p.image
    );
    let content = read_in_image(&p.image, &["/app/index.html"]);
    assert_eq!(content, "<h1>first</h1>", "built the wrong commit");
    stages.stop().await;
}

#[tokio::test]
async fn a_branch_name_is_built_as_the_commit_it_names() {
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
    publish(&s, changed("main", None)).await;
    let built = tap
        .expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    let Event::ImageBuilt(b) = &built.event else {
        panic!()
    };
    assert_eq!(b.revision, r.two, "the branch's commit is recorded");
    assert!(b.image.ends_with(&format!(":{}", r.two)), "{}", b.image);
    let pushed = tap
        .expect("image.pushed", Duration::from_secs(60))
        .await
        .unwrap();
    let image = pushed.event.image().unwrap().to_owned();
    assert_eq!(read_in_image(&image, &["/app/index.html"]), "<h1>two</h1>");
    assert_eq!(labels(&image)["org.opencontainers.image.revision"], r.two);

    // An annotated tag: recorded as the commit it points to, not the tag object.
    publish(&s, changed("refs/tags/v1", None)).await;
    let built = tap
        .expect("image.built", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(built.event.revision(), Some(r.one.as_str()));
    stages.stop().await;
}

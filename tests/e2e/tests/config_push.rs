//! A push to the ops config repo deploys: a real bare git repository with Ferry's
//! post-receive hook (`deploy/hooks/git-post-receive`) installed, every service running,
//! staging on h1 and production on h2. Changing `.env` in the config repo rebuilds the
//! revision in production with the new config, and production serves the new value.

mod common;

use common::gate::*;
use common::stack::spawn_stack;
use ferry_shared::bus::Publisher;
use ferry_shared::event::{Envelope, Event, SourceChanged, Starter};
use ferry_testkit::project::git;
use ferry_testkit::{Tap, amqp_url, docker_hosts, http_request};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const GIT_TOKEN: &str = "git-hook-token-e2e-1";

/// What the environment serves at `path` (on either blue/green port).
async fn serving_at(ports: [u16; 2], path: &str) -> Option<String> {
    for port in ports {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        if let Ok((200, body)) = http_request(addr, "GET", path, &[], b"").await {
            return Some(body.trim().to_owned());
        }
    }
    None
}

/// A bare config repo (`root/config.git`, branch main) with `web/env/production.env`,
/// its working clone in `root/config-wc`, and Ferry's hook installed to tell `hooks`.
fn config_repo(root: &Path, hooks: SocketAddr) -> String {
    let bare = root.join("config.git");
    git(root, &["init", "-q", "--bare", "-b", "main", "config.git"]);
    let url = format!("file://{}", bare.display());
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/hooks/git-post-receive"
        ),
        bare.join("hooks/post-receive"),
    )
    .unwrap();
    std::fs::write(
        bare.join("ferry-hook.conf"),
        format!(
            "FERRY_URL=http://{hooks}/hooks/git\nFERRY_TOKEN={GIT_TOKEN}\nFERRY_REPO_URL={url}\n"
        ),
    )
    .unwrap();
    let wc = root.join("config-wc");
    git(root, &["clone", "-q", &url, "config-wc"]);
    std::fs::create_dir_all(wc.join("web/env")).unwrap();
    std::fs::create_dir_all(wc.join("blog")).unwrap();
    std::fs::write(wc.join("web/env/production.env"), "GREETING=hello\n").unwrap();
    std::fs::write(wc.join("blog/site.conf"), "listen 80;\n").unwrap();
    git(&wc, &["add", "."]);
    git(&wc, &["commit", "-q", "-m", "first config"]);
    // Nothing of the project was built yet: the hook's post is answered "ignored".
    git(&wc, &["push", "-q", "origin", "main"]);
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_repo_push_rebuilds_the_release_in_production_with_the_new_config() {
    ferry_testkit::ensure_busybox_base(&docker_hosts()[0]).unwrap();
    let g = Gate::new();
    let dir = tempfile::tempdir().unwrap();
    let svn_url = svn_web_project(dir.path(), 2);
    let source = format!(r#"{{ kind = "svn", url = "{svn_url}", path = "/trunk/web" }}"#);
    // The receiver's address is only known once it runs, and the config must name the
    // repo's URL: the repo's path is fixed first, the hook's settings written after.
    let bare_url = format!("file://{}", dir.path().join("config.git").display());
    let tables = format!(
        "{build}\n[hooks]\ngit_token = \"{GIT_TOKEN}\"\n\
         [projects.{p}.config_repo]\nurl = \"{bare_url}\"\nbranch = \"main\"\npath = \"web\"\n\
         files = {{ \"env/production.env\" = \"env.txt\" }}\n",
        build = build_table(dir.path()),
        p = g.project,
    );
    let checks = format!(
        "[[projects.{}.tests.checks]]\nurl = \"/env.txt\"\nbody_contains = [\"GREETING=\"]\n",
        g.project
    );
    let cfg = g.config_with("", &checks, &source, &tables);
    let mut tap = Tap::new(&amqp_url(), &g.ns, "#").await.unwrap();
    let stack = spawn_stack(cfg.clone()).await;
    let url = config_repo(dir.path(), stack.hooks);
    assert_eq!(url, bare_url);

    // r1 goes to production with the first config.
    let first = Envelope::new_run(
        &g.project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: svn_url.clone(),
            reference: None,
            revision: "1".into(),
            author: Some("jdoe".into()),
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    );
    Publisher::new(&cfg.broker, "test", None)
        .publish(&first)
        .await
        .unwrap();
    tap.expect_run("test.passed.production", first.run_id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        serving_at(g.production, "/env.txt").await.as_deref(),
        Some("GREETING=hello")
    );
    assert_eq!(
        serving_at(g.production, "/").await.as_deref(),
        Some("r1"),
        "r2 was committed but never deployed"
    );

    // Ops change the production .env (and another project's file): one run, of r1.
    let wc = dir.path().join("config-wc");
    std::fs::write(wc.join("web/env/production.env"), "GREETING=bonjour\n").unwrap();
    std::fs::write(wc.join("blog/site.conf"), "listen 81;\n").unwrap();
    git(&wc, &["commit", "-q", "-am", "say bonjour"]);
    git(&wc, &["push", "-q", "origin", "main"]);
    let pushed = git(&wc, &["rev-parse", "HEAD"]);

    let started = loop {
        let e = tap
            .next(WAIT)
            .await
            .expect("the config push started no run");
        if e.kind() == "source.changed" && e.run_id != first.run_id {
            break e;
        }
    };
    let Event::SourceChanged(s) = &started.event else {
        unreachable!()
    };
    assert_eq!(s.revision, "1", "the revision in production is rebuilt");
    assert_eq!(s.source, "config");
    let change = s.config_change.as_ref().expect("a config change");
    assert_eq!(change.commit, pushed);
    assert_eq!(change.files, vec!["env/production.env".to_owned()]);
    assert_eq!(s.message.as_deref().map(str::trim), Some("say bonjour"));
    assert!(
        matches!(&started.started_by, Some(Starter::Push { pusher, .. }) if !pusher.is_empty()),
        "{:?}",
        started.started_by
    );
    let run = started.run_id;
    let built = tap.expect_run("image.built", run, WAIT).await.unwrap();
    let Event::ImageBuilt(b) = &built.event else {
        unreachable!()
    };
    assert_eq!(b.config_commit.as_deref(), Some(pushed.as_str()));
    assert!(
        b.image.ends_with(&format!(":1-cfg{}", &pushed[..8])),
        "{}",
        b.image
    );
    for key in [
        "deploy.succeeded.staging",
        "test.passed.staging",
        "deploy.succeeded.production",
        "test.passed.production",
    ] {
        tap.expect_run(key, run, WAIT).await.unwrap();
    }
    assert_eq!(
        serving_at(g.production, "/env.txt").await.as_deref(),
        Some("GREETING=bonjour")
    );
    assert_eq!(serving_at(g.production, "/").await.as_deref(), Some("r1"));

    // Pushes that change nothing of the project start nothing, and say why.
    let other = [
        (
            "refs/heads/feature",
            vec!["web/env/production.env"],
            "branch `main`",
        ),
        (
            "refs/heads/main",
            vec!["blog/site.conf"],
            "no changed file under `web`",
        ),
    ];
    for (reference, paths, why) in other {
        let body = serde_json::json!({
            "repository_url": url, "ref": reference, "after": pushed,
            "before": "1111111111111111111111111111111111111111", "changed_paths": paths,
        });
        let auth = format!("Bearer {GIT_TOKEN}");
        let (status, answer) = http_request(
            stack.hooks,
            "POST",
            "/hooks/git",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.to_string().as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains(why), "{answer}");
    }
    let later = tap.drain(Duration::from_secs(2)).await;
    assert!(
        !later.iter().any(|e| e.kind() == "source.changed"),
        "{later:?}"
    );
    stack.stop().await;
    g.cleanup();
}

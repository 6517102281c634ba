//! Several build engines (`build.docker_hosts`): builds of different projects spread
//! over two real Docker daemons, each image is pushed from the engine that built it,
//! and a build whose engine goes away mid-build is built on the other one.

mod common;

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_testkit::project::svn_apps;
use ferry_testkit::{Tap, amqp_url, docker_hosts, harness_var, spawn_stage, unique_namespace};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const WAIT: Duration = Duration::from_secs(240);

fn config(
    dir: &Path,
    ns: &str,
    engines: &[String],
    svn_url: &str,
    names: &[String],
) -> Arc<FerryConfig> {
    let mut text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        retry_delays_ms = [500]
        [registry]
        address = "{registry}"
        username = "{user}"
        password = "{pass}"
        [build]
        docker_hosts = {engines:?}
        work_dir = "{work}"
        log_dir = "{logs}"
        svn_username = "{svn_user}"
        svn_password = "{svn_pass}"
        [services.builder]
        admin_listen = "127.0.0.1:0"
        [services.pusher]
        admin_listen = "127.0.0.1:0"
        "#,
        amqp = amqp_url(),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        user = harness_var("FERRY_TEST_REGISTRY_USER"),
        pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
        work = dir.join("work").display(),
        logs = dir.join("logs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
    );
    for name in names {
        text.push_str(&format!(
            "[projects.{name}]\nimage = \"bh/{ns}-{name}\"\nenvironments = []\n\
             source = {{ kind = \"svn\", url = \"{svn_url}\", path = \"/trunk/{name}\" }}\n"
        ));
    }
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

async fn start(cfg: &Arc<FerryConfig>, project: &str) -> Envelope {
    let e = Envelope::new_run(
        project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "test".into(),
            reference: None,
            revision: "1".into(),
            author: None,
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    );
    Publisher::new(&cfg.broker, "test", None)
        .publish(&e)
        .await
        .unwrap();
    e
}

async fn stages(cfg: &Arc<FerryConfig>) -> Vec<ferry_testkit::RunningStage> {
    vec![
        spawn_stage(
            cfg,
            builder::spec(),
            builder::defaults(cfg, builder::DEFAULTS),
            builder::Stage::new(cfg.clone()),
        )
        .await,
        spawn_stage(
            cfg,
            pusher::spec(),
            pusher::DEFAULTS,
            pusher::Stage::new(cfg.clone()),
        )
        .await,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_builds_spread_over_two_engines_and_each_is_pushed_from_its_own() {
    let engines: Vec<String> = docker_hosts()[..2].to_vec();
    for e in &engines {
        ferry_testkit::ensure_busybox_base(e).unwrap();
    }
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("app{i}")).collect();
    let svn_url = svn_apps(dir.path(), &names, r#"["/bin/sleep", "2"]"#);
    let cfg = config(dir.path(), &ns, &engines, &svn_url, &names);
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let running = stages(&cfg).await;
    let mut runs = HashMap::new();
    for name in &names {
        let e = start(&cfg, name).await;
        runs.insert(e.run_id, name.clone());
    }
    let mut built_on = HashMap::new();
    let mut pushed = HashSet::new();
    while pushed.len() < names.len() {
        let e = tap
            .next(WAIT)
            .await
            .expect("a run stopped before image.pushed");
        match &e.event {
            Event::ImageBuilt(b) => {
                built_on.insert(e.run_id, b.build_host.clone().unwrap());
            }
            Event::ImagePushed(_) => {
                pushed.insert(e.run_id);
            }
            Event::BuildFailed(f) | Event::PushFailed(f) => panic!("{}: {}", e.kind(), f.reason),
            _ => {}
        }
    }
    for s in running {
        s.stop().await;
    }
    let used: HashSet<&String> = built_on.values().collect();
    assert_eq!(
        used.len(),
        2,
        "every build went to one engine: {built_on:?}"
    );
    // Each image is on the engine that built it, and only there was it pushed from.
    for (run, engine) in &built_on {
        let name = &runs[run];
        let tag = format!("{}/bh/{ns}-{name}:1", harness_var("FERRY_TEST_REGISTRY"));
        assert!(
            ferry_testkit::docker(engine, None, &["image", "inspect", &tag]).is_ok(),
            "{tag} not on {engine}"
        );
    }
}

/// A Unix-socket forwarder to a Docker engine that cuts every connection (and stops
/// answering) once a build has been going for `after`: an engine that goes away.
async fn vanishing_engine(listen: PathBuf, target: String, after: Duration) -> Arc<AtomicBool> {
    let target = PathBuf::from(target.trim_start_matches("unix://"));
    let listener = UnixListener::bind(&listen).unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let (gone_tx, gone) = tokio::sync::watch::channel(false);
    let flag = cut.clone();
    tokio::spawn(async move {
        loop {
            let mut gone = gone.clone();
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = gone.wait_for(|g| *g) => break,
            };
            let Ok((mut client, _)) = accepted else { break };
            let Ok(mut server) = UnixStream::connect(&target).await else {
                continue;
            };
            let gone_tx = gone_tx.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = cr.read(&mut buf).await?;
                        if n == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                        if buf[..n].windows(7).any(|w| w == b"/build?")
                            && !flag.swap(true, Ordering::SeqCst)
                        {
                            let gone_tx = gone_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(after).await;
                                let _ = gone_tx.send(true);
                            });
                        }
                        sw.write_all(&buf[..n]).await?;
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                    _ = gone.wait_for(|g| *g) => {}
                }
            });
        }
        let _ = std::fs::remove_file(&listen);
    });
    cut
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_whose_engine_goes_away_is_built_on_another() {
    let hosts = docker_hosts();
    for e in &hosts[..2] {
        ferry_testkit::ensure_busybox_base(e).unwrap();
    }
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("vanishing.sock");
    let engines = vec![format!("unix://{}", proxy.display()), hosts[0].clone()];
    // A project whose builds go to the engine that will vanish.
    let probe =
        builder::engines::Engines::new(&config(dir.path(), &ns, &engines, "svn://x", &[]).build);
    let name = (0..)
        .map(|i| format!("app{i}"))
        .find(|n| probe.preferred(n) == engines[0])
        .unwrap();
    let names = vec![name.clone()];
    let svn_url = svn_apps(dir.path(), &names, r#"["/bin/sleep", "6"]"#);
    let cfg = config(dir.path(), &ns, &engines, &svn_url, &names);
    let cut = vanishing_engine(proxy, hosts[1].clone(), Duration::from_secs(2)).await;
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let running = stages(&cfg).await;
    let run = start(&cfg, &name).await;
    let built = tap.expect_run("image.built", run.run_id, WAIT).await;
    let pushed = tap.expect_run("image.pushed", run.run_id, WAIT).await;
    for s in running {
        s.stop().await;
    }
    assert!(
        cut.load(Ordering::SeqCst),
        "the build never reached the vanishing engine"
    );
    let built = built.unwrap();
    let Event::ImageBuilt(b) = &built.event else {
        unreachable!()
    };
    assert_eq!(b.build_host.as_deref(), Some(hosts[0].as_str()));
    pushed.unwrap();
    assert!(!tap.saw("build.failed", |e| e.run_id == run.run_id));
}

//! Several build engines: 8 builds of different projects at once on two Docker daemons
//! (`build.docker_hosts`, one build per engine at a time) against one build alone,
//! through the real builder and pusher. Each build checks its code out of SVN and runs
//! a CPU-bound step (a shell loop of about a second), like a composer or npm step.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, SourceChanged};
use ferry_testkit::project::svn_apps;
use ferry_testkit::{Tap, docker_hosts, ensure_busybox_base, harness_var, unique_namespace};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The build step: CPU-bound, ~1 s on one core here.
const STEP: &str = r#"["/bin/sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]"#;

pub struct Figures {
    pub single_s: f64,
    pub parallel8_s: f64,
}

pub async fn parallel8(url: &str) -> anyhow::Result<Figures> {
    let engines: Vec<String> = docker_hosts()[..2].to_vec();
    for e in &engines {
        ensure_busybox_base(e)?;
    }
    let dir = tempfile::tempdir()?;
    let names: Vec<String> = (0..9).map(|i| format!("app{i}")).collect();
    let code = svn_apps(dir.path(), &names, STEP);
    let ns = unique_namespace();
    let mut text = format!(
        r#"
        [log]
        level = "warn"
        [broker]
        url = "{url}"
        namespace = "{ns}"
        [services.builder]
        admin_listen = "127.0.0.1:0"
        [services.pusher]
        admin_listen = "127.0.0.1:0"
        [build]
        docker_hosts = {engines:?}
        work_dir = "{work}"
        log_dir = "{logs}"
        svn_username = "{svn_user}"
        svn_password = "{svn_pass}"
        [registry]
        address = "{registry}"
        username = "{reg_user}"
        password = "{reg_pass}"
        "#,
        work = dir.path().join("work").display(),
        logs = dir.path().join("logs").display(),
        svn_user = harness_var("FERRY_TEST_SVN_USER"),
        svn_pass = harness_var("FERRY_TEST_SVN_PASSWORD"),
        registry = harness_var("FERRY_TEST_REGISTRY"),
        reg_user = harness_var("FERRY_TEST_REGISTRY_USER"),
        reg_pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    for n in &names {
        text.push_str(&format!(
            "[projects.{n}]\nimage = \"bench/{ns}-{n}\"\n\
             source = {{ kind = \"svn\", url = \"{code}\", path = \"/trunk/{n}\" }}\n"
        ));
    }
    let cfg = Arc::new(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?);
    let mut tap = Tap::new(url, &ns, "image.built").await?;
    let stages = crate::build::Stages::start(&cfg).await?;
    let publisher = Publisher::new(&cfg.broker, "bench", None);
    let wait = Duration::from_secs(600);

    // One build alone (its own project: nothing cached for it).
    let single = Instant::now();
    publisher.publish(&source_changed(&names[8])).await?;
    tap.expect("image.built", wait).await?;
    let single_s = single.elapsed().as_secs_f64();

    let all = Instant::now();
    for n in &names[..8] {
        publisher.publish(&source_changed(n)).await?;
    }
    let mut on = HashSet::new();
    for _ in 0..8 {
        let e = tap.expect("image.built", wait).await?;
        if let Event::ImageBuilt(b) = &e.event {
            on.extend(b.build_host.clone());
        }
    }
    let parallel8_s = all.elapsed().as_secs_f64();
    anyhow::ensure!(on.len() == 2, "the 8 builds used {on:?}, not both engines");

    stages.stop().await?;
    Ok(Figures {
        single_s,
        parallel8_s,
    })
}

fn source_changed(project: &str) -> Envelope {
    Envelope::new_run(
        project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "bench".into(),
            reference: None,
            revision: "1".into(),
            author: None,
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

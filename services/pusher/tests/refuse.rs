//! The pusher pushes only the run's project's image to `registry.address`: an
//! `image.built` naming another project's repository (a forged event from the builder's
//! broker user) ends `push.failed` with the reason, and the registry never gets it; so
//! does one naming a build engine that is not in `build.docker_hosts`.

use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImageBuilt};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, harness_var, unique_namespace};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The registry's answer for `repository`'s tag list (200: it exists, 404: it does not).
async fn registry_tags(repository: &str) -> (u16, String) {
    let registry = harness_var("FERRY_TEST_REGISTRY");
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!(
            "{}:{}",
            harness_var("FERRY_TEST_REGISTRY_USER"),
            harness_var("FERRY_TEST_REGISTRY_PASSWORD")
        ),
    );
    ferry_testkit::http_request(
        registry.parse().unwrap(),
        "GET",
        &format!("/v2/{repository}/tags/list"),
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    )
    .await
    .unwrap()
}

/// Publish `image.built` of `shop` for the image `<registry>/<repository(ns)>:1` (tagged
/// on the first engine) as built on `build_host`; the reason of its `push.failed`, after
/// checking the registry never got the repository.
async fn refused(repository: impl Fn(&str) -> String, build_host: Option<&str>) -> String {
    let ns = unique_namespace();
    let registry = harness_var("FERRY_TEST_REGISTRY");
    let host = &docker_hosts()[0];
    ferry_testkit::ensure_busybox_base(host).unwrap();
    let other = repository(&ns);
    let tag = format!("{registry}/{other}:1");
    docker(host, None, &["tag", ferry_testkit::BUSYBOX_BASE, &tag]).unwrap();
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        [services.pusher]
        admin_listen = "127.0.0.1:0"
        [build]
        docker_host = "{host}"
        [registry]
        address = "{registry}"
        username = "{user}"
        password = "{pass}"
        [projects.shop]
        image = "push/{ns}"
        source = {{ kind = "git", url = "https://example.com/shop.git" }}
        "#,
        amqp = amqp_url(),
        user = harness_var("FERRY_TEST_REGISTRY_USER"),
        pass = harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
    );
    let cfg = Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap());
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let stage = ferry_testkit::spawn_stage(
        &cfg,
        pusher::spec(),
        pusher::DEFAULTS,
        pusher::Stage::new(cfg.clone()),
    )
    .await;
    let built = Envelope::new_run(
        "shop",
        Event::ImageBuilt(ImageBuilt {
            revision: "1".into(),
            image: tag.clone(),
            config_commit: None,
            build_log: None,
            docker_millis: None,
            build_host: build_host.map(str::to_owned),
        }),
    );
    Publisher::new(&cfg.broker, "test", None)
        .publish(&built)
        .await
        .unwrap();
    let failed = tap
        .expect_run("push.failed", built.run_id, Duration::from_secs(60))
        .await;
    stage.stop().await;
    let _ = docker(host, None, &["rmi", &tag]);
    let (status, body) = registry_tags(&other).await;
    assert_eq!(status, 404, "the registry got {other}: {body}");
    assert!(!tap.saw("image.pushed", |e| e.run_id == built.run_id));
    let failed = failed.unwrap();
    let Event::PushFailed(f) = &failed.event else {
        panic!("{failed:?}")
    };
    f.reason.clone()
}

#[tokio::test]
async fn another_projects_image_is_not_pushed() {
    let reason = refused(|ns| format!("push/{ns}-other"), None).await;
    assert!(
        reason.contains("-other") && reason.contains("not project `shop`"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_image_on_an_engine_not_in_the_build_hosts_is_not_pushed() {
    // The image is on the first engine: pushing it from there would succeed.
    let reason = refused(|ns| format!("push/{ns}"), Some("tcp://127.0.0.1:9")).await;
    assert!(
        reason.contains("tcp://127.0.0.1:9") && reason.contains("not in build.docker_hosts"),
        "{reason}"
    );
}

//! `ferry scale` on Docker hosts, against a real daemon: replicas added on their own
//! port pairs and health-checked, kept by the next deploy, removed again, refused past
//! the ports configured, and never in the middle of a deploy.

mod common;

use common::*;
use ferry_shared::bus::Publisher;
use ferry_shared::event::{Envelope, Event, ScaleRequested};
use ferry_testkit::{Tap, amqp_url, free_port, unique_namespace};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);

fn scale(project: &str, to: u32) -> Envelope {
    let mut e = Envelope::new_run(
        project,
        Event::ScaleRequested(ScaleRequested {
            to,
            requested_by: Some("ops".into()),
        }),
    );
    e.environment = Some("staging".into());
    e
}

/// A project in staging with `pairs` blue/green port pairs (one replica to start
/// with: the rest is room to scale), `v1` deployed, the updater running and a tap on
/// every event. `start_delay`: how long each container takes to answer.
struct Scaled {
    ns: String,
    project: String,
    ports: Vec<u16>,
    tap: Tap,
    publisher: Publisher,
    updater: ferry_testkit::RunningStage,
}

async fn deployed(prefix: &str, pairs: usize, start_delay: &str) -> Scaled {
    let ns = unique_namespace();
    let project = format!("{prefix}{}", &ns[1..9]);
    let ports: Vec<u16> = (0..2 * pairs).map(|_| free_port()).collect();
    let _ = config_with(&ns, &project, [ports[0], ports[1]], start_delay, "");
    let all: Vec<String> = ports.iter().map(u16::to_string).collect();
    let cfg = edit_config(
        &ns,
        &format!("ports = [{}, {}]", ports[0], ports[1]),
        &format!("ports = [{}]", all.join(", ")),
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let v1 = web_image(&ns, "v1", true);
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    // The tap keeps what it skipped: what follows starts with it empty.
    tap.drain(Duration::from_millis(300)).await;
    Scaled {
        ns,
        project,
        ports,
        tap,
        publisher,
        updater,
    }
}

#[tokio::test]
async fn replicas_are_added_kept_by_the_next_deploy_and_removed() {
    // Port pairs for three replicas: room to grow.
    let Scaled {
        ns,
        project,
        ports,
        mut tap,
        publisher,
        updater,
    } = deployed("sc", 3, "").await;
    let v2 = web_image(&ns, "v2", true);
    assert_eq!(running_revisions(&project), ["v1"]);

    // Whoever can publish on the broker is not trusted: a scale out of range is
    // refused by the updater itself, and nothing changes.
    for forged in [0, 101] {
        publisher.publish(&scale(&project, forged)).await.unwrap();
        let failed = tap.expect("deploy.failed.staging", WAIT).await.unwrap();
        let Event::DeployFailed(f) = &failed.event else {
            panic!()
        };
        assert!(f.reason.contains("use 1 to 100"), "{}", f.reason);
        assert_eq!(running_revisions(&project), ["v1"]);
    }

    publisher.publish(&scale(&project, 3)).await.unwrap();
    let done = tap.expect("scale.succeeded.staging", WAIT).await.unwrap();
    let Event::ScaleSucceeded(s) = &done.event else {
        panic!("{done:?}")
    };
    assert_eq!(
        (s.from, s.to, s.requested_by.as_deref()),
        (1, 3, Some("ops"))
    );
    assert_eq!(running_revisions(&project), ["v1", "v1", "v1"]);
    // Each new replica serves on the first port of its own pair.
    for port in [ports[0], ports[2], ports[4]] {
        assert_eq!(serving(port).await.as_deref(), Some("v1"), "port {port}");
    }
    let status = ferry_status(&ns, &project);
    let row = &status[0];
    assert_eq!(
        (row["scale"].as_u64(), row["health"].as_str()),
        (Some(3), Some("healthy")),
        "{status}"
    );
    assert_eq!(
        row["instances"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );

    // The next deploy keeps three.
    publisher
        .publish(&request(&project, &v2, "v2"))
        .await
        .unwrap();
    let ok = tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    let Event::DeploySucceeded(d) = &ok.event else {
        panic!()
    };
    let hosts: Vec<&str> = d.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(hosts, ["h1/r0", "h1/r1", "h1/r2"]);
    assert_eq!(running_revisions(&project), ["v2", "v2", "v2"]);

    // Past the ports there is no room: refused with the reason, nothing changed.
    publisher.publish(&scale(&project, 4)).await.unwrap();
    let failed = tap.expect("deploy.failed.staging", WAIT).await.unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(f.reason.contains("ports for 3 replica(s)"), "{}", f.reason);
    assert_eq!(running_revisions(&project), ["v2", "v2", "v2"]);

    publisher.publish(&scale(&project, 1)).await.unwrap();
    let done = tap.expect("scale.succeeded.staging", WAIT).await.unwrap();
    let Event::ScaleSucceeded(s) = &done.event else {
        panic!()
    };
    assert_eq!((s.from, s.to), (3, 1));
    assert_eq!(running_revisions(&project), ["v2"]);
    let status = ferry_status(&ns, &project);
    assert_eq!(status[0]["scale"].as_u64(), Some(1), "{status}");
    updater.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn a_scale_asked_during_a_deploy_waits_for_it_and_scales_the_new_release() {
    // Each container takes 2 s to answer: the deploy is in progress when the scale comes.
    let Scaled {
        ns,
        project,
        mut tap,
        publisher,
        updater,
        ..
    } = deployed("sd", 2, "2").await;
    let v2 = web_image(&ns, "v2", true);
    let deploy = request(&project, &v2, "v2");
    publisher.publish(&deploy).await.unwrap();
    tap.expect_run("deploy.started.staging", deploy.run_id, WAIT)
        .await
        .unwrap();
    publisher.publish(&scale(&project, 2)).await.unwrap();
    // What ended, in order: the deploy, then the scale (deploy.failed if the scale
    // had broken into the switch).
    let mut ended = Vec::new();
    let mut seen = Vec::new();
    while !ended.iter().any(|k| k == "scale.succeeded") {
        let e = tap.next(WAIT).await.expect("the scale ends");
        let kind = e.kind().to_owned();
        seen.push(format!(
            "{} {} {:?}",
            e.time.format("%H:%M:%S%.3f"),
            kind,
            e.event.revision()
        ));
        assert_ne!(kind, "deploy.failed", "{e:?}");
        if kind.ends_with(".succeeded") {
            ended.push(kind);
        }
    }
    assert_eq!(
        ended,
        ["deploy.succeeded", "scale.succeeded"],
        "the scale waited for the deploy: {seen:?}"
    );
    // Both replicas run the release the deploy put there.
    assert_eq!(running_revisions(&project), ["v2", "v2"]);
    updater.stop().await;
    cleanup(&project);
}

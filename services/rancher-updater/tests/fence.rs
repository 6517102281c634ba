//! Fenced deploys: a deploy whose lock is lost mid-way (its broker connection closed, as
//! a node crash or a partition closes it) stops before its next replica switch, and the
//! deploy is finished by the next holder of the lock, with no container started twice.

mod common;

use chrono::Utc;
use common::*;
use ferry_shared::bus::Publisher;
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_that_loses_its_lock_stops_before_the_next_switch_and_the_next_holder_finishes_it()
{
    let ns = unique_namespace();
    let project = format!("fe{}", &ns[1..9]);
    // Three replicas, each taking 4 s to come up: a deploy of ~12 s, switched replica
    // by replica.
    three_slow_replicas(&ns, &project, "4");
    let cfg = edit_config(
        &ns,
        &format!("namespace = \"{ns}\""),
        &format!("namespace = \"{ns}\"\n        retry_delays_ms = [500]"),
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let v1 = web_image(&ns, "v1", true);
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let watch = watch_creations(&project);
    let run = request(&project, &v1, "v1");
    publisher.publish(&run).await.unwrap();
    tap.expect("deploy.started.staging", Duration::from_secs(30))
        .await
        .unwrap();

    // The lock's connection goes, as it goes with a crashed or cut-off node.
    let closed =
        ferry_testkit::close_connections_named(&format!("lock deploy.{project}.staging")).unwrap();
    let lost_at = Utc::now();
    assert_eq!(closed, 1, "the deploy holds its lock on one connection");

    // The run still ends, once: retried, the deploy takes the lock again and finishes.
    let mut started = Vec::new();
    let succeeded = loop {
        let e = tap
            .next(Duration::from_secs(60))
            .await
            .expect("the deploy did not end after its lock was lost");
        assert_eq!(e.run_id, run.run_id);
        match e.kind() {
            "deploy.started" => started.push(e.time),
            "deploy.succeeded" => break e,
            "deploy.requested" => {}
            other => panic!("{other}: {e:?}"),
        }
    };
    assert_eq!(
        started.len(),
        1,
        "after the first deploy.started: the deploy stopped and was started again once"
    );
    let resumed = started[0];
    assert!(resumed > lost_at);
    assert!(
        tap.next(Duration::from_secs(2)).await.is_none(),
        "a second outcome"
    );

    // Between the lock's loss and its next holder, no replica was switched; each of
    // the three got exactly one container.
    let created = creations(&watch);
    let between: Vec<_> = created
        .iter()
        .filter(|(t, _)| *t > lost_at && *t < resumed)
        .collect();
    assert!(
        between.is_empty(),
        "switched without the lock: {between:?} (lost {lost_at}, taken again {resumed})"
    );
    let before = created.iter().filter(|(t, _)| *t <= lost_at).count();
    assert!(
        before < 3,
        "the lock was lost after the deploy: {created:?}"
    );
    assert_eq!(created.len(), 3, "one container per replica: {created:?}");
    assert_eq!(running_revisions(&project), ["v1", "v1", "v1"]);
    let _ = succeeded;
    updater.stop().await;
    cleanup(&project);
}

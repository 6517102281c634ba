//! The updater on the harness's three-node RabbitMQ cluster: two updaters connected
//! through `broker.addresses`, and the node that holds a deploy's lock killed mid-deploy.
//! The run ends once, no replica is switched while nobody holds the lock, and each
//! replica gets one container.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use ferry_shared::bus::Publisher;
use ferry_shared::event::Envelope;
use ferry_testkit::cluster::Cluster;
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// `host:port` of an AMQP URL.
fn address(url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Events from taps on every node (a killed node's tap just goes quiet), each once. By id
/// and time: a retried step publishes its event again under the same id.
struct Taps {
    taps: Vec<Tap>,
    seen: HashSet<(uuid::Uuid, DateTime<Utc>)>,
}

impl Taps {
    async fn next(&mut self, timeout: Duration) -> Option<Envelope> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for tap in &mut self.taps {
                if let Some(e) = tap.next(Duration::from_millis(100)).await
                    && self.seen.insert((e.event_id, e.time))
                {
                    return Some(e);
                }
            }
        }
        None
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_killed_under_a_deploy_s_lock_ends_the_run_once_with_no_switch_unlocked() {
    let cluster = Cluster::from_harness();
    cluster.restore_all().await.unwrap();
    let urls = cluster.amqp_urls();
    let ns = unique_namespace();
    let project = format!("cl{}", &ns[1..9]);
    three_slow_replicas(&ns, &project, "3");
    let others: Vec<String> = urls[1..]
        .iter()
        .map(|u| format!("\"{}\"", address(u)))
        .collect();
    let cfg = edit_config(
        &ns,
        &format!("url = \"{}\"\n        namespace = \"{ns}\"", amqp_url()),
        &format!(
            "url = \"{}\"\n        addresses = [{}]\n        namespace = \"{ns}\"\n        retry_delays_ms = [500]",
            urls[0],
            others.join(", ")
        ),
    );
    let mut taps = Taps {
        taps: Vec::new(),
        seen: HashSet::new(),
    };
    for url in &urls {
        taps.taps
            .push(Tap::new(url, &ns, "deploy.#").await.unwrap());
    }
    let image = web_image(&ns, "v1", true);
    // Two updaters, each connection of theirs on a node of its own choosing.
    let a = start_updater(&cfg).await;
    let b = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let since = Utc::now() - chrono::Duration::seconds(1);
    let run = request(&project, &image, "v1");
    publisher.publish(&run).await.unwrap();
    loop {
        let e = taps
            .next(Duration::from_secs(60))
            .await
            .expect("no deploy.started");
        if e.kind() == "deploy.started" {
            break;
        }
    }

    // The node holding the deploy's lock goes down, as a crash takes it.
    let lock = format!("{ns}.lock.deploy.{project}.staging");
    let holder = cluster
        .classic_queue_node(&lock)
        .await
        .unwrap()
        .expect("the lock's queue is on no node");
    cluster.node(holder).kill().await.unwrap();
    let lost_at = Utc::now();

    let mut started = Vec::new();
    let mut succeeded = 0;
    while let Some(e) = taps.next(Duration::from_secs(90)).await {
        assert_eq!(e.run_id, run.run_id);
        match e.kind() {
            "deploy.started" => started.push(e.time),
            "deploy.succeeded" => {
                succeeded += 1;
                // Anything doubled would follow within a few seconds.
                if taps
                    .next(Duration::from_secs(5))
                    .await
                    .is_some_and(|e| e.kind() == "deploy.succeeded")
                {
                    succeeded += 1;
                }
                break;
            }
            "deploy.requested" => {}
            other => panic!("{other}: {e:?}"),
        }
    }
    let describe = cluster.describe().await;
    assert_eq!(succeeded, 1, "the run ended {succeeded} times; {describe}");
    let created: Vec<_> = creations(&project, since)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(created.len(), 3, "one container per replica: {created:?}");
    assert_eq!(running_revisions(&project), ["v1", "v1", "v1"]);
    // The deploy that lost its lock switched nothing more until a holder took it again.
    let resumed = started
        .first()
        .expect("the deploy did not stop when its lock's node died");
    {
        let unlocked: Vec<_> = created
            .iter()
            .filter(|t| **t > lost_at && *t < resumed)
            .collect();
        assert!(
            unlocked.is_empty(),
            "switched without the lock: {unlocked:?} (lost {lost_at}, taken again {resumed})"
        );
    }
    println!("lock on node {holder}, killed at {lost_at}; deploy started again at {started:?}");
    a.stop().await;
    b.stop().await;
    cleanup(&project);
    cluster.restore_all().await.unwrap();
}

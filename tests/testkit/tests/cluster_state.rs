//! What Ferry keeps in RabbitMQ besides its stage queues, on the harness's three-node
//! cluster: an approval hold stays decidable, and expires, when the node leading its
//! queue is killed; the run history (a stream) keeps every event published before and
//! after the loss of a node, and its reader goes on. Ferry's own code connects through
//! `broker.addresses`, as in production.
//!
//! Runs in the `cluster` test group (one at a time) and leaves the cluster whole.

use chrono::Utc;
use ferry_shared::bus::{Publisher, Topology, history, hold};
use ferry_shared::config::BrokerConfig;
use ferry_shared::event::{ApprovalRequested, Envelope, Event};
use ferry_testkit::cluster::Cluster;
use ferry_testkit::{Tap, broker_config, source_changed, unique_namespace};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The cluster, whole, and Ferry's settings for a fresh namespace on it.
async fn whole_cluster() -> (Cluster, BrokerConfig) {
    let cluster = Cluster::from_harness();
    cluster
        .restore_all()
        .await
        .expect("the cluster is whole first");
    let mut cfg = cluster_config(&cluster);
    cfg.namespace = unique_namespace();
    (cluster, cfg)
}

/// Ferry's broker settings for the cluster: node 0's URL and the others as addresses.
fn cluster_config(cluster: &Cluster) -> BrokerConfig {
    let urls = cluster.amqp_urls();
    let mut cfg = broker_config(&urls[0]);
    cfg.addresses = urls[1..]
        .iter()
        .map(|u| {
            let rest = u.split_once('@').map_or(u.as_str(), |(_, r)| r);
            rest.split('/').next().unwrap_or(rest).to_owned()
        })
        .collect();
    cfg.publish_timeout_ms = 10_000;
    cfg
}

fn approval_request(env: &str, expires_in: chrono::Duration) -> Envelope {
    let mut e = Envelope::new_run(
        "held",
        Event::ApprovalRequested(ApprovalRequested {
            revision: "7".into(),
            image: format!("127.0.0.1:5000/held:7@sha256:{}", "b".repeat(64)),
            passed_in: Some("staging".into()),
            expires_at: Utc::now() + expires_in,
            canary_percent: None,
        }),
    );
    e.environment = Some(env.into());
    e
}

/// The node leading `queue` is killed, then started again in the background.
async fn kill_leader_of(cluster: &Cluster, queue: &str) -> (usize, tokio::task::JoinHandle<()>) {
    let leader = cluster
        .quorum_leader(queue)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{queue} has no leader"));
    cluster.node(leader).kill().await.unwrap();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(SECS(2)).await;
        Cluster::from_harness().node(leader).start().await.unwrap();
    });
    (leader, restart)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_stays_decidable_and_the_history_complete_when_a_node_dies() {
    let (cluster, cfg) = whole_cluster().await;
    {
        let conn = lapin::Connection::connect(cluster.node(0).url(), Default::default())
            .await
            .unwrap();
        Topology::history(&cfg)
            .declare(&conn.create_channel().await.unwrap())
            .await
            .unwrap();
        let _ = conn.close(200, "declared".into()).await;
    }
    // The history reader, as the operator API runs it.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let reader = {
        let (cfg, seen) = (cfg.clone(), seen.clone());
        tokio::spawn(history::follow(cfg, move |e| {
            seen.lock().unwrap().insert(e.event_id);
        }))
    };
    let publisher = Publisher::new(&cfg, "test", None);
    let mut published = Vec::new();
    for i in 0..5 {
        let e = source_changed(&i.to_string());
        publisher.publish(&e).await.unwrap();
        published.push(e.event_id);
    }

    let request = approval_request("production", chrono::Duration::minutes(10));
    hold::place(&cfg, &request, SECS(600)).await.unwrap();
    let queue = hold::queue_name(&cfg.namespace, request.run_id, "production");
    let (killed, restart) = kill_leader_of(&cluster, &queue).await;

    // Events published while the node is down reach the history too.
    for i in 5..10 {
        let e = source_changed(&i.to_string());
        publisher.publish(&e).await.unwrap();
        published.push(e.event_id);
    }
    // Asked at once: the queue's new leader is still being elected.
    assert_eq!(
        hold::held_in(&cfg, request.run_id, &["staging", "production"])
            .await
            .unwrap()
            .as_deref(),
        Some("production"),
        "the hold was not found with its leader (node {killed}) dead"
    );
    let taken = hold::take(&cfg, request.run_id, &["production"])
        .await
        .unwrap()
        .expect("the hold could not be taken with its leader dead");
    assert_eq!(taken.request.event_id, request.event_id);
    taken.settle().await.unwrap();
    assert!(
        hold::take(&cfg, request.run_id, &["production"])
            .await
            .unwrap()
            .is_none(),
        "a settled hold was taken twice"
    );

    let complete = ferry_testkit::wait_until(SECS(30), || async {
        let seen = seen.lock().unwrap();
        published.iter().all(|id| seen.contains(id))
    })
    .await;
    let missing = {
        let seen = seen.lock().unwrap();
        published.iter().filter(|id| !seen.contains(id)).count()
    };
    assert!(
        complete,
        "{missing} of {} events missing from the history read across the loss of node {killed}",
        published.len()
    );
    reader.abort();
    restart.await.unwrap();
    cluster.restore_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_expires_on_time_when_the_node_leading_it_died() {
    let (cluster, cfg) = whole_cluster().await;
    let request = approval_request("production", chrono::Duration::seconds(8));
    hold::place(&cfg, &request, SECS(8)).await.unwrap();
    let queue = hold::queue_name(&cfg.namespace, request.run_id, "production");
    let leader = cluster.quorum_leader(&queue).await.unwrap().unwrap();
    // The tap (an exclusive queue) on a node that stays.
    let other = cluster.node((leader + 1) % 3);
    let mut tap = Tap::new(other.url(), &cfg.namespace, "hold.expired.#")
        .await
        .unwrap();
    let (_, restart) = kill_leader_of(&cluster, &queue).await;
    // The held request itself comes back, dead-lettered as `hold.expired.production`.
    let expired = tap
        .next(SECS(40))
        .await
        .expect("the hold did not expire with its leader dead");
    assert_eq!(expired.event_id, request.event_id);
    restart.await.unwrap();
    cluster.restore_all().await.unwrap();
}

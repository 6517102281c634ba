//! The updater on the harness's three-node RabbitMQ cluster: two updaters connected
//! through `broker.addresses`, a deploy over three slow replicas, and a fault mid-deploy:
//! the node that holds the deploy's lock killed, stopped and started again, or cut off
//! (the minority side); another node cut off (the majority side: the deploy goes on); the
//! leader of the updater's queue moved. Each time the run ends once, each replica gets
//! one container (from the Docker host's own events), and no replica is switched between
//! the loss of the lock and its next holder's start.

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

/// What happens to the cluster once the deploy has started.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// SIGKILL of the node holding the deploy's lock.
    KillLockNode,
    /// `rabbitmqctl stop` of that node, started again 2 s later.
    RestartLockNode,
    /// That node cut off from everyone (its clients too): the minority side.
    PartitionLockNode,
    /// A node not holding the lock cut off: the deploy is on the majority side.
    PartitionOtherNode,
    /// The leadership of the updater's queue moved to another node.
    MoveQueueLeader,
}

impl Fault {
    /// Whether the deploy's holder loses its lock (and the deploy must start again).
    fn loses_lock(self) -> bool {
        matches!(
            self,
            Fault::KillLockNode | Fault::RestartLockNode | Fault::PartitionLockNode
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_killed_under_a_deploy_s_lock_ends_the_run_once_with_no_switch_unlocked() {
    deploy_through(Fault::KillLockNode).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_restarted_under_a_deploy_s_lock_ends_the_run_once_with_no_switch_unlocked()
{
    deploy_through(Fault::RestartLockNode).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lock_s_node_cut_off_minority_side_ends_the_run_once_with_no_switch_unlocked() {
    deploy_through(Fault::PartitionLockNode).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_node_cut_off_majority_side_lets_the_deploy_go_on_and_end_once() {
    deploy_through(Fault::PartitionOtherNode).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_updater_queue_s_leader_moved_mid_deploy_ends_the_run_once() {
    deploy_through(Fault::MoveQueueLeader).await;
}

async fn deploy_through(fault: Fault) {
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
    let watch = watch_creations(&project);
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

    let lock = format!("{ns}.lock.deploy.{project}.staging");
    let holder = cluster
        .classic_queue_node(&lock)
        .await
        .unwrap()
        .expect("the lock's queue is on no node");
    let faulted = match fault {
        Fault::PartitionOtherNode => (holder + 1) % 3,
        _ => holder,
    };
    let node = cluster.node(faulted);
    let mut restart = None;
    match fault {
        Fault::KillLockNode => node.kill().await.unwrap(),
        Fault::RestartLockNode => {
            node.stop().await.unwrap();
            let node = Cluster::from_harness();
            restart = Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                node.node(faulted).start().await
            }));
        }
        Fault::PartitionLockNode | Fault::PartitionOtherNode => node.partition().await.unwrap(),
        Fault::MoveQueueLeader => {
            let queue = format!("{ns}.rancher-updater");
            let (from, to) = cluster.move_quorum_leader(&queue).await.unwrap();
            println!("{queue}: leader moved from node {from} to node {to}");
        }
    }
    let lost_at = Utc::now();

    // A redelivered deploy that finds its work done publishes its outcome again under the
    // same event id (consumers dedupe by it): a second id would be a second deploy.
    let mut started = Vec::new();
    let mut succeeded = HashSet::new();
    loop {
        // Anything doubled follows within a few seconds of the first end.
        let wait = if succeeded.is_empty() { 120 } else { 5 };
        let Some(e) = taps.next(Duration::from_secs(wait)).await else {
            break;
        };
        assert_eq!(e.run_id, run.run_id);
        match e.kind() {
            "deploy.started" => started.push(e.time),
            "deploy.succeeded" => {
                succeeded.insert(e.event_id);
            }
            "deploy.requested" => {}
            other => panic!("{other}: {e:?}"),
        }
    }
    let describe = cluster.describe().await;
    assert_eq!(
        succeeded.len(),
        1,
        "{fault:?}: the run ended {} times; {describe}",
        succeeded.len()
    );
    let created: Vec<_> = creations(&watch).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        created.len(),
        3,
        "{fault:?}: one container per replica: {created:?}"
    );
    assert_eq!(running_revisions(&project), ["v1", "v1", "v1"]);
    println!(
        "{fault:?} on node {faulted} (lock on node {holder}) at {lost_at}; deploy started again at {started:?}; containers created at {created:?}"
    );
    if fault.loses_lock() {
        // The deploy that lost its lock switched nothing more until a holder took it again.
        let resumed = started
            .first()
            .expect("the deploy did not stop when its lock was lost");
        let unlocked: Vec<_> = created
            .iter()
            .filter(|t| **t > lost_at && *t < resumed)
            .collect();
        assert!(
            unlocked.is_empty(),
            "{fault:?}: switched without the lock: {unlocked:?} (lost {lost_at}, taken again {resumed})"
        );
    } else {
        // The deploy went on: no new start before its last switch. A start after it is a
        // redelivery (the consumer's connection was on the cut-off node, so its ack was
        // lost) that finds every replica done: the same event ids, no container.
        let last = created.iter().max().expect("no container created");
        assert!(
            started.iter().all(|s| s > last),
            "{fault:?}: the deploy was started again ({started:?}) before its last switch ({last}) though its lock stayed"
        );
    }
    a.stop().await;
    b.stop().await;
    cleanup(&project);
    if let Some(restart) = restart {
        restart.await.unwrap().unwrap();
    }
    cluster.restore_all().await.unwrap();
}

//! The cluster's faults, for `CHAOS_CLUSTER=1`: the services run against the harness's
//! three-node RabbitMQ cluster (tests/lib/components.sh: rabbitmq-cluster), and nodes are
//! killed and started again, stopped and started, cut off until they pause and healed, and
//! the leader of the updater's queue is moved, while runs are in flight.

use anyhow::Context as _;
use ferry_shared::config::BrokerConfig;
use ferry_testkit::cluster::Cluster;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// SIGKILL of a node, started again 3 s later.
    Kill,
    /// `rabbitmqctl stop` of a node, started again 2 s later.
    Restart,
    /// A node cut off from everyone (peers and clients) until it pauses (pause_minority),
    /// then healed: the partition heals.
    Partition,
    /// The leadership of the rancher-updater's queue moved to another node.
    MoveLeader,
}

impl Fault {
    /// `CHAOS_CLUSTER_FAULTS`: a comma-separated list of kill, restart, partition, leader.
    pub fn parse_list(text: &str) -> anyhow::Result<Vec<Fault>> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "kill" => Ok(Fault::Kill),
                "restart" => Ok(Fault::Restart),
                "partition" => Ok(Fault::Partition),
                "leader" => Ok(Fault::MoveLeader),
                other => anyhow::bail!(
                    "CHAOS_CLUSTER_FAULTS: `{other}` is not kill, restart, partition or leader"
                ),
            })
            .collect()
    }
}

/// Inflict `fault` on node `node` (the leader move picks its own) and undo it: returns what
/// happened and how long the cluster was not whole.
pub async fn inflict(fault: Fault, node: usize, namespace: &str) -> anyhow::Result<String> {
    let cluster = Cluster::from_harness();
    let t0 = Instant::now();
    let n = cluster.node(node);
    let what = match fault {
        Fault::Kill => {
            n.kill().await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            n.start().await?;
            format!("node {node} killed and started again")
        }
        Fault::Restart => {
            n.stop().await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            n.start().await?;
            format!("node {node} stopped and started again")
        }
        Fault::Partition => {
            n.partition().await?;
            // Heal once it has paused: see `Node::heal` for why not earlier.
            let paused = ferry_testkit::wait_until(Duration::from_secs(40), || async {
                !n.is_serving().await
            })
            .await;
            let paused_after = t0.elapsed();
            n.heal().await?;
            format!(
                "node {node} cut off, {} after {:.1} s, healed",
                if paused { "paused" } else { "NOT paused" },
                paused_after.as_secs_f64()
            )
        }
        Fault::MoveLeader => {
            let queue = format!("{namespace}.rancher-updater");
            let (from, to) = cluster.move_quorum_leader(&queue).await?;
            format!("{queue}: leader moved from node {from} to node {to}")
        }
    };
    // Whole again before the next fault; a partition healed at a bad moment may need help.
    let repaired = match cluster.wait_whole(Duration::from_secs(90)).await {
        Ok(()) => "",
        Err(_) => {
            cluster.restore_all().await?;
            " (whole only after restore_all)"
        }
    };
    Ok(format!(
        "{what}; whole again after {:.1} s{repaired}",
        t0.elapsed().as_secs_f64()
    ))
}

/// Import Ferry's definitions for this namespace (queues, bindings, the policy that spreads
/// quorum leaders) on node 0, as the README's production set-up does.
pub async fn import_definitions(cfg: &BrokerConfig, dir: &std::path::Path) -> anyhow::Result<()> {
    let cluster = Cluster::from_harness();
    cluster
        .restore_all()
        .await
        .context("the cluster is not whole")?;
    let defs = ferry_shared::bus::topology::definitions(cfg, &ferry_shared::pipeline::stages());
    let file = dir.join("definitions.json");
    std::fs::write(&file, defs.to_string())?;
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    cluster
        .node(0)
        .rabbitmqctl(&["import_definitions", &file.to_string_lossy()])
        .await?;
    Ok(())
}

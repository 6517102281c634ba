//! The harness's three-node RabbitMQ cluster (`rabbitmq-cluster` in tests/lib/components.sh),
//! driven through real commands. Node N runs in a network namespace of its own behind a veth
//! whose host end sits on a bridge of this machine: [`Node::kill`] SIGKILLs its beam,
//! [`Node::stop`] and [`Node::start`] run rabbitmqctl and rabbitmq-server in its namespace,
//! [`Node::partition`] takes its veth down (it is cut off from the other nodes and from its
//! clients alike), [`Node::partition_from_peers`] drops only the traffic between it and the
//! other nodes (its clients still reach it) and [`Node::heal`] undoes both.
//!
//! Tests on the cluster disturb each other: they run one at a time (the `cluster` test group
//! in .config/nextest.toml) and call [`Cluster::restore_all`] first and last.
//! Nodes are numbered from 0 here: `node(0)` is `rabbit1`, the first of `amqp_urls()`.

use anyhow::{Context as _, bail};
use futures_util::future::join_all;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The rabbitmq scripts themselves: the `/usr/sbin` wrappers switch user and miss the cookie.
const RMQ_BIN: &str = "/usr/lib/rabbitmq/bin";
/// One CLI call takes ~0.6 s, but calls that need the other nodes block while a partition
/// is being detected (up to ~30 s).
const CTL_TIMEOUT: Duration = Duration::from_secs(45);
/// How long `restore_all` lets a running node's app stay down (booting, or paused until
/// its peers are seen) before it restarts it.
const APP_DOWN_PATIENCE: Duration = Duration::from_secs(40);
/// A node boots in ~10 s; one that was not the last to stop waits for its peers' tables.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// One boot of [`Node::start`]: ~10 s normally, the peers' tables included when they run.
const BOOT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(70);
/// Boots [`Node::start`] tries before it gives up.
const BOOT_ATTEMPTS: u32 = 3;

/// The three nodes, in the order of the harness's variables.
pub struct Cluster {
    nodes: Vec<Node>,
}

/// One node and the handles the harness gives to reach it from outside RabbitMQ.
pub struct Node {
    /// Position in the cluster (0-based), also in `Cluster::amqp_urls`.
    index: usize,
    /// Erlang node name (`rabbitN@10.201.0.1N`): what rabbitmqctl and queue leaders name.
    name: String,
    /// AMQP URL of this node (user `ferry`), reachable from this machine's namespace.
    url: String,
    /// The node's network namespace (`/var/run/netns/...`): its CLI runs there, so it reaches
    /// the node while the node is cut off.
    netns: String,
    /// Host end of the node's veth: taking it down is the partition.
    veth: String,
    /// The other nodes' addresses: what `partition_from_peers` drops in the node's namespace.
    peer_addrs: Vec<String>,
    /// The node's directory: `rabbitmq-env.conf` (everything its server and CLI need),
    /// `rabbit.pid`, `log/`.
    dir: PathBuf,
}

fn list_var(name: &str) -> Vec<String> {
    crate::harness_var(name)
        .split(',')
        .map(str::to_owned)
        .collect()
}

impl Cluster {
    /// The cluster `tests/run.sh` started (its `FERRY_TEST_CLUSTER_*` variables).
    pub fn from_harness() -> Self {
        let urls = list_var("FERRY_TEST_CLUSTER_AMQP_URLS");
        let names = list_var("FERRY_TEST_CLUSTER_NODES");
        let netns = list_var("FERRY_TEST_CLUSTER_NETNS");
        let veths = list_var("FERRY_TEST_CLUSTER_VETHS");
        let dir = PathBuf::from(crate::harness_var("FERRY_TEST_CLUSTER_DIR"));
        assert!(
            urls.len() == names.len() && netns.len() == names.len() && veths.len() == names.len(),
            "FERRY_TEST_CLUSTER_* disagree on the number of nodes"
        );
        let addr = |name: &str| name.split_once('@').map(|(_, host)| host.to_owned());
        let nodes = (0..names.len())
            .map(|i| Node {
                index: i,
                name: names[i].clone(),
                url: urls[i].clone(),
                netns: netns[i].clone(),
                veth: veths[i].clone(),
                peer_addrs: (0..names.len())
                    .filter(|&j| j != i)
                    .filter_map(|j| addr(&names[j]))
                    .collect(),
                dir: dir.join(format!("rabbit{}", i + 1)),
            })
            .collect();
        Self { nodes }
    }

    /// Every node's AMQP URL, in node order.
    pub fn amqp_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The index of the node with Erlang name `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The node leading quorum queue `queue` (virtual host `/`), asked of the first node
    /// that runs and is not cut off. `Ok(None)`: no such quorum queue, or no leader now.
    pub async fn quorum_leader(&self, queue: &str) -> anyhow::Result<Option<usize>> {
        Ok(self.quorum_leaders().await?.get(queue).copied())
    }

    /// Every quorum queue of virtual host `/` that has a leader now, with its leader's index.
    pub async fn quorum_leaders(&self) -> anyhow::Result<std::collections::HashMap<String, usize>> {
        let out = self
            .ask(&[
                "list_queues",
                "-p",
                "/",
                "name",
                "type",
                "leader",
                "--formatter",
                "json",
            ])
            .await?;
        let queues: Vec<serde_json::Value> =
            serde_json::from_str(&out).with_context(|| format!("list_queues output: {out}"))?;
        Ok(queues
            .iter()
            .filter(|q| q["type"] == "quorum")
            .filter_map(|q| {
                let leader = self.index_of(q["leader"].as_str()?)?;
                Some((q["name"].as_str()?.to_owned(), leader))
            })
            .collect())
    }

    /// Move the leadership of quorum queue `queue` away from its leader with no node going
    /// down: the leader's member is removed (the others elect a new leader) and added back
    /// as a follower. Returns (old leader, new leader).
    pub async fn move_quorum_leader(&self, queue: &str) -> anyhow::Result<(usize, usize)> {
        let from = self
            .quorum_leader(queue)
            .await?
            .with_context(|| format!("quorum queue {queue} has no leader"))?;
        let via = &self.nodes[(from + 1) % self.nodes.len()];
        let leader = self.nodes[from].name.as_str();
        via.rabbitmq_queues(&["delete_member", "--vhost", "/", queue, leader])
            .await?;
        via.rabbitmq_queues(&["add_member", "--vhost", "/", queue, leader])
            .await?;
        let to = self
            .quorum_leader(queue)
            .await?
            .with_context(|| format!("quorum queue {queue} has no leader after the move"))?;
        anyhow::ensure!(to != from, "{queue}: the leader stayed on {leader}");
        Ok((from, to))
    }

    /// The node whose Erlang process is classic queue `queue` (virtual host `/`): where an
    /// exclusive queue, a lock, lives. `Ok(None)`: no such classic queue.
    pub async fn classic_queue_node(&self, queue: &str) -> anyhow::Result<Option<usize>> {
        // The table, not JSON: JSON prints a pid without its node (`#PID<12796.635.0>`).
        let out = self
            .ask(&[
                "list_queues",
                "-p",
                "/",
                "--no-table-headers",
                "name",
                "type",
                "pid",
            ])
            .await?;
        // `NAME\tclassic\t<rabbit2@10.201.0.12.1796286593.635.0>`: the node, then three numbers.
        Ok(out
            .lines()
            .filter_map(|line| line.rsplitn(3, '\t').collect::<Vec<_>>().try_into().ok())
            .find(|[_, kind, name]: &[&str; 3]| *name == queue && *kind == "classic")
            .and_then(|[pid, _, _]| pid.trim_matches(['<', '>']).rsplitn(4, '.').nth(3))
            .and_then(|node| self.index_of(node)))
    }

    /// `rabbitmqctl ARGS` of the first node that runs and is not cut off; its output.
    async fn ask(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut last_error = None;
        for node in self.reachable().await {
            match node.rabbitmqctl(args).await {
                Ok(out) => return Ok(out),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no node runs and is reachable")))
    }

    /// True when every node runs RabbitMQ and sees all the others running, with no
    /// partition recorded.
    pub async fn is_whole(&self) -> bool {
        let views = join_all(self.nodes.iter().map(|n| n.view())).await;
        self.whole(&views)
    }

    fn whole(&self, views: &[anyhow::Result<View>]) -> bool {
        views.iter().all(|view| {
            view.as_ref().is_ok_and(|v| {
                v.partitions.is_empty() && self.nodes.iter().all(|n| v.running.contains(&n.name))
            })
        })
    }

    /// Wait until [`Cluster::is_whole`].
    pub async fn wait_whole(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.is_whole().await {
            if Instant::now() >= deadline {
                bail!(
                    "the cluster is not whole after {timeout:?}: {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Every node back: veths up, nodes that do not run started (together: a node that was
    /// not the last to stop waits for the others' tables), until the cluster is whole.
    /// A node left serving on its own with a partition recorded (see [`Node::heal`]) has
    /// its RabbitMQ application restarted, RabbitMQ's recovery for the losing side: it
    /// rejoins and takes the majority's state.
    pub async fn restore_all(&self) -> anyhow::Result<()> {
        for node in &self.nodes {
            node.heal().await?;
        }
        let launched = join_all(
            self.nodes
                .iter()
                .filter(|n| !n.is_running())
                .map(|n| n.launch()),
        )
        .await;
        launched.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut restarted = Vec::new();
        // Since when each node's VM runs without its rabbit app answering.
        let mut app_down_since: Vec<Option<Instant>> = vec![None; self.nodes.len()];
        loop {
            let views = join_all(self.nodes.iter().map(|n| n.view())).await;
            if self.whole(&views) {
                return Ok(());
            }
            for (node, view) in self.nodes.iter().zip(&views) {
                let down = &mut app_down_since[node.index];
                match view {
                    Ok(view) if view.split_off() && !restarted.contains(&node.index) => {
                        node.restart_app().await?;
                        restarted.push(node.index);
                    }
                    Ok(_) => *down = None,
                    // A node paused by pause_minority that stays paused once its peers are
                    // back (seen on a loaded machine): restart its app, else the node.
                    Err(_) if node.is_running() => {
                        let since = *down.get_or_insert_with(Instant::now);
                        if since.elapsed() > APP_DOWN_PATIENCE && !restarted.contains(&node.index) {
                            if node.restart_app().await.is_err() {
                                node.kill().await?;
                                node.launch().await?;
                            }
                            restarted.push(node.index);
                        }
                    }
                    Err(_) => *down = None,
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the cluster is not whole after {BOOT_TIMEOUT:?}: {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One line per node: process, link and what the node itself says, for failure messages.
    pub async fn describe(&self) -> String {
        let mut lines = Vec::new();
        for node in &self.nodes {
            let status = match node.view().await {
                Ok(v) => format!(
                    "sees running {:?}, partitions {:?}",
                    v.running, v.partitions
                ),
                Err(e) => format!("{e:#}"),
            };
            lines.push(format!(
                "{} (pid {:?}, {}): {}",
                node.name,
                node.pid(),
                if node.is_partitioned().await {
                    "cut off"
                } else {
                    "linked"
                },
                status.lines().next().unwrap_or_default()
            ));
        }
        lines.join("; ")
    }

    /// The nodes that run and are not cut off, in node order.
    async fn reachable(&self) -> Vec<&Node> {
        let mut nodes = Vec::new();
        for node in &self.nodes {
            if node.is_running() && !node.is_partitioned().await {
                nodes.push(node);
            }
        }
        nodes
    }
}

impl Node {
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn veth(&self) -> &str {
        &self.veth
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("rabbit.pid")
    }

    /// The PID of the node's beam, if it is alive and really this node's (its environment
    /// carries the harness's marker naming this node's directory).
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // A zombie (killed, not reaped yet) is gone for our purposes.
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            return None;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let marker = format!("FERRY_TEST_CLUSTER_NODE_DIR={}", self.dir.display());
        environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
            .then_some(pid)
    }

    /// The node's Erlang VM runs (it may be booting, or paused as a minority).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The node is cut off: its veth is down ([`Node::partition`]) or the traffic to its
    /// peers is dropped ([`Node::partition_from_peers`]).
    pub async fn is_partitioned(&self) -> bool {
        let link_down = std::fs::read_to_string(format!("/sys/class/net/{}/flags", self.veth))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|flags| flags & 1 == 0); // IFF_UP
        if link_down {
            return true;
        }
        for peer in &self.peer_addrs {
            if self
                .iptables(&["-C", "INPUT", "-s", peer, "-j", "DROP"])
                .await
                .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// RabbitMQ itself runs on the node (false while it boots, is paused or stopped).
    pub async fn is_serving(&self) -> bool {
        self.is_running()
            && self
                .cli("rabbitmq-diagnostics", &["check_running"], CTL_TIMEOUT)
                .await
                .is_ok()
    }

    /// `rabbitmqctl -q -n <node> ARGS` from the node's namespace; its stdout. Fails on a
    /// non-zero exit and after 45 s.
    pub async fn rabbitmqctl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli("rabbitmqctl", args, CTL_TIMEOUT).await
    }

    /// `rabbitmq-queues -q -n <node> ARGS` from the node's namespace; its stdout.
    pub async fn rabbitmq_queues(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli("rabbitmq-queues", args, CTL_TIMEOUT).await
    }

    /// The node's own `cluster_status` (fails while it is paused or stopped).
    pub async fn cluster_status(&self) -> anyhow::Result<serde_json::Value> {
        let out = self
            .rabbitmqctl(&["cluster_status", "--formatter", "json"])
            .await?;
        serde_json::from_str(&out)
            .with_context(|| format!("cluster_status of {}: {out}", self.name))
    }

    async fn view(&self) -> anyhow::Result<View> {
        let status = self.cluster_status().await?;
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(View {
            me: self.name.clone(),
            running: names(&status["running_nodes"]),
            members: names(&status["disk_nodes"]).len() + names(&status["ram_nodes"]).len(),
            partitions: status["partitions"]
                .as_object()
                .map(|p| p.values().flat_map(names).collect())
                .unwrap_or_default(),
        })
    }

    async fn cli(&self, tool: &str, args: &[&str], timeout: Duration) -> anyhow::Result<String> {
        let mut cmd = Command::new("nsenter");
        cmd.args(self.in_netns(tool))
            .args(["-q", "-n", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| anyhow::anyhow!("{tool} {args:?} on {} took over {timeout:?}", self.name))?
            .with_context(|| format!("running {tool} {args:?} on {}", self.name))?;
        if !out.status.success() {
            bail!(
                "{tool} {args:?} on {}: {}: {}{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Arguments of `nsenter` that run a rabbitmq script in the node's namespace, with the
    /// node's environment file (cookie HOME, node name, Erlang arguments).
    fn in_netns(&self, tool: &str) -> [String; 4] {
        [
            format!("--net={}", self.netns),
            "env".to_owned(),
            format!(
                "RABBITMQ_CONF_ENV_FILE={}",
                self.dir.join("rabbitmq-env.conf").display()
            ),
            format!("{RMQ_BIN}/{tool}"),
        ]
    }

    /// SIGKILL the node's beam, as a crash would; returns once the process is gone.
    pub async fn kill(&self) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        signal(pid, "KILL").await?;
        self.wait_gone(Duration::from_secs(10)).await
    }

    /// Orderly stop of the whole node (`rabbitmqctl stop`: returns once its OS process has
    /// exited); SIGTERM, then SIGKILL, if that does not work within a minute.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let pid_file = self.pid_file().display().to_string();
        let stopped = self
            .cli("rabbitmqctl", &["stop", &pid_file], Duration::from_secs(60))
            .await;
        if stopped.is_err() && self.is_running() {
            signal(pid, "TERM").await?;
            if self.wait_gone(Duration::from_secs(20)).await.is_err() {
                signal(pid, "KILL").await?;
            }
        }
        self.wait_gone(Duration::from_secs(10)).await
    }

    /// Start the node again on its data (nothing happens if it runs) and wait until it has
    /// rejoined: RabbitMQ runs on it and it sees a majority of the cluster running. A node
    /// that is cut off does not get there (see [`Node::heal`]).
    ///
    /// A boot that hangs is killed and tried again, up to [`BOOT_ATTEMPTS`] times: after
    /// a partition heals, a node's Erlang `global` can hang its boot for good ("Global
    /// hang workaround: global state on <peer> seems broken" in its log; CI saw a boot
    /// wait out 190 s on a loaded machine), and a fresh start gets past it.
    pub async fn start(&self) -> anyhow::Result<()> {
        let secs = BOOT_ATTEMPT_TIMEOUT.as_secs().to_string();
        let pid_file = self.pid_file().display().to_string();
        let mut attempt = 1;
        loop {
            if !self.is_running() {
                self.launch().await?;
            }
            let booted = self
                .cli(
                    "rabbitmqctl",
                    &["wait", &pid_file, "--timeout", &secs],
                    BOOT_ATTEMPT_TIMEOUT + Duration::from_secs(10),
                )
                .await;
            match booted {
                Ok(_) => break,
                Err(e) if attempt < BOOT_ATTEMPTS => {
                    eprintln!(
                        "{}: boot {attempt} hung ({e}); killing it to start again",
                        self.name
                    );
                    self.kill().await?;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Ok(view) = self.view().await {
                if view.split_off() {
                    bail!(
                        "{} runs on its own with a partition recorded ({:?}): \
                         Cluster::restore_all repairs that",
                        self.name,
                        view.partitions
                    );
                }
                if view.running.contains(&self.name) && view.running.len() * 2 > view.members {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not rejoin a majority within {BOOT_TIMEOUT:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Launch the node's Erlang VM (`rabbitmq-server -detached` in its namespace) without
    /// waiting for it.
    async fn launch(&self) -> anyhow::Result<()> {
        // `rabbitmqctl wait` must not find the killed node's PID.
        let _ = std::fs::remove_file(self.pid_file());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log/start.out"))?;
        // In a session of its own, output to a file, not a pipe: the node keeps open
        // what it inherits.
        let status = Command::new("setsid")
            .args(["-w", "nsenter"])
            .args(self.in_netns("rabbitmq-server"))
            .arg("-detached")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await
            .with_context(|| format!("launching {}", self.name))?;
        if !status.success() {
            bail!("rabbitmq-server -detached for {}: {status}", self.name);
        }
        Ok(())
    }

    /// `rabbitmqctl stop_app` and `start_app`: RabbitMQ restarts in the running VM (and
    /// rejoins, taking the cluster's state, when it was split off).
    pub async fn restart_app(&self) -> anyhow::Result<()> {
        self.rabbitmqctl(&["stop_app"]).await?;
        self.rabbitmqctl(&["start_app"]).await?;
        Ok(())
    }

    /// Cut the node off: its veth goes down, so neither the other nodes nor any client
    /// reach it (nor it them). With pause_minority it pauses ~net_ticktime (10 s) later.
    pub async fn partition(&self) -> anyhow::Result<()> {
        ip_link(&self.veth, "down").await
    }

    /// Cut the node off from the other nodes only (packets to and from their addresses are
    /// dropped in its namespace): its clients still reach it, and it theirs, until it pauses.
    pub async fn partition_from_peers(&self) -> anyhow::Result<()> {
        for peer in &self.peer_addrs {
            self.iptables(&["-I", "INPUT", "-s", peer, "-j", "DROP"])
                .await?;
            self.iptables(&["-I", "OUTPUT", "-d", peer, "-j", "DROP"])
                .await?;
        }
        Ok(())
    }

    /// Undo [`Node::partition`] and [`Node::partition_from_peers`]; a paused node resumes
    /// by itself a few seconds later. Heal once the node has paused (`!is_serving()`), not
    /// about net_ticktime after the cut: a heal while the nodes are deciding that they lost
    /// each other can leave a partition recorded that pause_minority never repairs, the
    /// node serving on its own (seen here); [`Cluster::restore_all`] repairs that.
    pub async fn heal(&self) -> anyhow::Result<()> {
        ip_link(&self.veth, "up").await?;
        for peer in &self.peer_addrs {
            while self
                .iptables(&["-D", "INPUT", "-s", peer, "-j", "DROP"])
                .await
                .is_ok()
            {}
            while self
                .iptables(&["-D", "OUTPUT", "-d", peer, "-j", "DROP"])
                .await
                .is_ok()
            {}
        }
        Ok(())
    }

    /// iptables in the node's namespace (whose rules are the harness's alone).
    async fn iptables(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.netns))
            .args(["iptables", "-w"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running iptables")?;
        if !out.status.success() {
            bail!(
                "iptables {args:?} in {}: {}",
                self.netns,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn wait_gone(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                bail!("{} still runs after {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

async fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .await?;
    if !status.success() {
        bail!("kill -{sig} {pid}: {status}");
    }
    Ok(())
}

async fn ip_link(dev: &str, state: &str) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(["link", "set", dev, state])
        .output()
        .await
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip link set {dev} {state}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What one node says of the cluster (`rabbitmqctl cluster_status`).
struct View {
    /// The node asked.
    me: String,
    /// The nodes it sees running, itself included.
    running: Vec<String>,
    /// How many nodes the cluster has.
    members: usize,
    /// The nodes it has recorded a partition with.
    partitions: Vec<String>,
}

impl View {
    /// Split off from the majority yet serving: RabbitMQ runs on the node, it has recorded
    /// a partition and sees no majority running.
    fn split_off(&self) -> bool {
        !self.partitions.is_empty()
            && self.running.contains(&self.me)
            && self.running.len() * 2 <= self.members
    }
}

//! A RabbitMQ node of the test's own, which the test may stop, kill and restart
//! without disturbing other tests. Started by `tests/support/rabbit-node.sh`.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PrivateBroker {
    dir: PathBuf,
    pub port: u16,
    /// The node's Erlang distribution port, reserved like `port`: the script's default
    /// (port + 20000) lies in the kernel's ephemeral range, where a client socket of a
    /// busy test run may hold it by the time the node starts.
    dist_port: u16,
    script: String,
}

impl PrivateBroker {
    pub fn start() -> anyhow::Result<Self> {
        let script = crate::harness_var("FERRY_TEST_RABBIT_NODE_SCRIPT");
        let state = crate::harness_var("FERRY_TEST_STATE");
        let port = crate::free_port();
        let dist_port = crate::free_port();
        let dir = PathBuf::from(state).join(format!("rabbit-{port}"));
        let b = Self {
            dir,
            port,
            dist_port,
            script,
        };
        b.run("start")?;
        Ok(b)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn run(&self, action: &str) -> anyhow::Result<()> {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script).arg(action).arg(&self.dir);
        if action == "start" {
            cmd.arg(self.port.to_string())
                .env("FERRY_RABBIT_DIST_PORT", self.dist_port.to_string());
        }
        // Output goes to a file, not a pipe: the node it starts keeps inherited pipes
        // open, and waiting for their end would wait for the node to exit.
        std::fs::create_dir_all(&self.dir)?;
        let log = self.dir.join("harness.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let status = cmd
            .status()
            .with_context(|| format!("running {} {action}", self.script))?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            anyhow::bail!(
                "rabbit-node.sh {action} {} failed:\n{}",
                self.dir.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Orderly stop (data kept).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.run("stop")
    }

    /// SIGKILL the node, as a crash would.
    pub fn kill(&self) -> anyhow::Result<()> {
        self.run("kill")
    }

    /// Start again on the same data and port.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.run("start")
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

/// Close the harness broker's client connections named `name` (the name a client gives
/// its connection, e.g. Ferry's `lock deploy.<project>.<env>`), as the broker does when
/// it loses a node or a client's heartbeats; how many were closed.
pub fn close_connections_named(name: &str) -> anyhow::Result<usize> {
    // One `eval`: each rabbitmqctl call starts an Erlang VM (seconds on a busy machine).
    let name = name.replace(['\\', '"'], "");
    let expr = format!(
        r#"length([rabbit_networking:close_connection(P, "closed by a test") || P <- rabbit_networking:connections(), begin [{{client_properties, C}}] = rabbit_networking:connection_info(P, [client_properties]), lists:keyfind(<<"connection_name">>, 1, C) =:= {{<<"connection_name">>, longstr, <<"{name}">>}} end])."#
    );
    let out = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
        .args([
            "-n",
            &crate::harness_var("FERRY_TEST_RABBIT_NODE"),
            "eval",
            &expr,
        ])
        .env("HOME", crate::harness_var("FERRY_TEST_RABBIT_DIR"))
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .output()
        .context("running rabbitmqctl eval")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl eval failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim()
        .parse()
        .with_context(|| format!("rabbitmqctl eval answered `{text}`"))
}

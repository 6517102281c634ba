//! The seven services as separate processes (the workspace's binaries), each logging
//! to its own file; the chaos task SIGKILLs and restarts them.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Another instance of a service: its binary and its `FERRY__...` overrides.
type Instance = (&'static str, Vec<(String, String)>);

pub struct Services {
    /// Where the service binaries are: next to this binary (`target/<profile>/`).
    bin_dir: PathBuf,
    config: PathBuf,
    logs: PathBuf,
    /// The running process of each service; absent while one is killed.
    running: BTreeMap<&'static str, Child>,
    /// Further instances of a service (name → its binary and `FERRY__...` overrides): a
    /// second rancher-updater competing for the deploy locks.
    extra: BTreeMap<&'static str, Instance>,
}

impl Services {
    pub fn new(config: &Path, logs: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("the path of ferry-chaos")?;
        let bin_dir = exe
            .parent()
            .context("ferry-chaos has no directory")?
            .to_owned();
        for svc in ferry_shared::SERVICES {
            let bin = bin_dir.join(svc);
            anyhow::ensure!(
                bin.exists(),
                "{} is not built: run `cargo build --workspace --bins` first",
                bin.display()
            );
        }
        Ok(Self {
            bin_dir,
            config: config.to_owned(),
            logs: logs.to_owned(),
            running: BTreeMap::new(),
            extra: BTreeMap::new(),
        })
    }

    /// Run one more instance of `binary` as `name`, with these configuration overrides.
    pub fn add_instance(
        &mut self,
        name: &'static str,
        binary: &'static str,
        overrides: Vec<(String, String)>,
    ) {
        self.extra.insert(name, (binary, overrides));
    }

    /// Every instance: the seven services and the extra ones.
    pub fn names(&self) -> Vec<&'static str> {
        let mut all = ferry_shared::SERVICES.to_vec();
        all.extend(self.extra.keys());
        all
    }

    pub fn start(&mut self, svc: &'static str) -> anyhow::Result<()> {
        if self.running.contains_key(svc) {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{svc}.log")))?;
        let (binary, overrides) = self
            .extra
            .get(svc)
            .map_or((svc, &[][..]), |(b, o)| (*b, o.as_slice()));
        let child = Command::new(self.bin_dir.join(binary))
            .envs(overrides.iter().map(|(k, v)| (k, v)))
            .env("FERRY_CONFIG", &self.config)
            .env_remove("RUST_LOG")
            // Plain text in the log files.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {svc}"))?;
        self.running.insert(svc, child);
        Ok(())
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for svc in self.names() {
            self.start(svc)?;
        }
        Ok(())
    }

    /// SIGKILL, as a crash or the OOM killer would; reaped before returning.
    pub async fn kill(&mut self, svc: &'static str) -> anyhow::Result<()> {
        if let Some(mut child) = self.running.remove(svc) {
            append(&self.logs, svc, "----- ferry-chaos: SIGKILL -----");
            child
                .kill()
                .await
                .with_context(|| format!("killing {svc}"))?;
        }
        Ok(())
    }

    /// A service that exited by itself (it should never): its exit status.
    pub fn exited(&mut self) -> Vec<(&'static str, std::process::ExitStatus)> {
        let mut gone = Vec::new();
        for (svc, child) in &mut self.running {
            if let Ok(Some(status)) = child.try_wait() {
                gone.push((*svc, status));
            }
        }
        for (svc, _) in &gone {
            self.running.remove(svc);
        }
        gone
    }

    /// SIGTERM every process and wait (their shutdown grace, then SIGKILL).
    pub async fn stop_all(&mut self) {
        for (svc, child) in std::mem::take(&mut self.running) {
            let mut child = child;
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                eprintln!("ferry-chaos: {svc} ignored SIGTERM for 30 s; SIGKILL");
                let _ = child.kill().await;
            }
        }
    }
}

/// Whether `svc`'s queue is bound to this routing key (the hook-receiver consumes none).
pub fn consumes(svc: &str, routing_key: &str) -> bool {
    let key: Vec<&str> = routing_key.split('.').collect();
    ferry_shared::pipeline::stages()
        .iter()
        .filter(|s| s.service == svc)
        .flat_map(|s| s.bindings.iter())
        .any(|b| topic_matches(&b.split('.').collect::<Vec<_>>(), &key))
}

/// AMQP topic matching: `*` is one word, `#` zero or more.
fn topic_matches(pattern: &[&str], key: &[&str]) -> bool {
    match (pattern.first(), key.first()) {
        (None, None) => true,
        (Some(&"#"), _) => {
            topic_matches(&pattern[1..], key)
                || (!key.is_empty() && topic_matches(pattern, &key[1..]))
        }
        (Some(p), Some(k)) if *p == "*" || p == k => topic_matches(&pattern[1..], &key[1..]),
        _ => false,
    }
}

/// A marker line in a service's log, so a reader sees where the process was killed.
pub fn append(logs: &Path, svc: &str, line: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{svc}.log")))
    {
        let _ = writeln!(f, "{line}");
    }
}

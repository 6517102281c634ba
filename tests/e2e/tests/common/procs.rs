//! The seven services as separate OS processes, from the workspace's binaries (built by
//! tests/run.sh next to the test binaries), the way they run in production: each can be
//! stopped (SIGTERM), killed (SIGKILL) and started again on its own. Ports are fixed when
//! the configuration is written, so a restarted process is found at the same addresses.
//! Each process logs to `<dir>/logs/<name>.log`, with a marker line where it was stopped.

use ferry_shared::config::FerryConfig;
use ferry_testkit::{free_port, http_request};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The first hook-receiver, named like its service.
pub const RECEIVER: &str = "hook-receiver";
/// The second hook-receiver replica ([`Procs::add_receiver_replica`]).
pub const RECEIVER_2: &str = "hook-receiver-2";

/// How long a started process may take to answer `/readyz` (connected to RabbitMQ).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long SIGTERM may take before the process is killed: above every shutdown grace.
const STOP_WITHIN: Duration = Duration::from_secs(30);

pub struct Procs {
    /// `target/<profile>/`, where the service binaries are.
    bin_dir: PathBuf,
    /// The configuration every process reads (`FERRY_CONFIG`).
    config_path: PathBuf,
    /// Parsed once here, so a bad configuration fails the test before any process starts.
    config: FerryConfig,
    /// `<dir>/logs/`: one file per instance, appended to across restarts.
    logs: PathBuf,
    /// Every instance by name: the seven services and any added replica.
    instances: BTreeMap<&'static str, Instance>,
    /// The running processes; an instance stopped or killed is absent.
    running: BTreeMap<&'static str, Child>,
}

/// One process of a service.
struct Instance {
    /// The service it is an instance of (its binary's name).
    binary: &'static str,
    /// `FERRY__...` overrides: what makes a second replica listen elsewhere.
    env: Vec<(String, String)>,
    /// `/healthz`, `/readyz` and `/metrics`.
    admin: SocketAddr,
    /// The hook-receiver's webhook and API address.
    hooks: Option<SocketAddr>,
}

fn loopback() -> SocketAddr {
    ([127, 0, 0, 1], free_port()).into()
}

impl Procs {
    /// Write `config` (a Ferry configuration without `[services.*]` tables) to
    /// `<dir>/ferry.toml`, with a loopback admin port for each service and the receiver's
    /// listen port added. Starts nothing.
    pub fn new(dir: &Path, config: &str) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        // Test binaries are in target/<profile>/deps/.
        let bin_dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
        let mut text = format!("# Written by the ferry-e2e test's Procs.\n{config}\n");
        let mut instances = BTreeMap::new();
        for svc in ferry_shared::SERVICES {
            let binary = bin_dir.join(svc);
            assert!(
                binary.exists(),
                "{} is not built: run the tests through tests/run.sh (it builds the binaries)",
                binary.display()
            );
            let (admin, hooks) = (loopback(), (svc == RECEIVER).then(loopback));
            text.push_str(&format!(
                "[services.{}]\nadmin_listen = \"{admin}\"\n",
                svc.replace('-', "_")
            ));
            if let Some(hooks) = hooks {
                text.push_str(&format!("listen = \"{hooks}\"\n"));
            }
            let env = Vec::new();
            let instance = Instance {
                binary: svc,
                env,
                admin,
                hooks,
            };
            instances.insert(svc, instance);
        }
        let config_path = dir.join("ferry.toml");
        let parsed = FerryConfig::from_toml_with_env(&text, &config_path)
            .unwrap_or_else(|e| panic!("the test's Ferry configuration is invalid: {e}"));
        std::fs::write(&config_path, text).unwrap();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Self {
            bin_dir,
            config_path,
            config: parsed,
            logs,
            instances,
            running: BTreeMap::new(),
        }
    }

    /// A second hook-receiver ([`RECEIVER_2`]): the same configuration on its own ports.
    pub fn add_receiver_replica(&mut self) -> &'static str {
        let (admin, hooks) = (loopback(), loopback());
        let key = "FERRY__SERVICES__HOOK_RECEIVER__";
        let env = vec![
            (format!("{key}ADMIN_LISTEN"), admin.to_string()),
            (format!("{key}LISTEN"), hooks.to_string()),
        ];
        let hooks = Some(hooks);
        let replica = Instance {
            binary: RECEIVER,
            env,
            admin,
            hooks,
        };
        self.instances.insert(RECEIVER_2, replica);
        RECEIVER_2
    }

    pub fn config(&self) -> &FerryConfig {
        &self.config
    }

    /// Every instance (the seven services and the added replicas), by name.
    pub fn names(&self) -> Vec<&'static str> {
        self.instances.keys().copied().collect()
    }

    /// Where the instance serves `/healthz`, `/readyz` and `/metrics`.
    pub fn admin(&self, name: &str) -> SocketAddr {
        self.instance(name).admin
    }

    /// Where a hook-receiver instance takes webhooks and API calls.
    pub fn hooks(&self, name: &str) -> SocketAddr {
        let hooks = self.instance(name).hooks;
        hooks.unwrap_or_else(|| panic!("{name} serves no hooks"))
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.running.contains_key(name)
    }

    /// Start every instance and wait until each is ready.
    pub async fn start_all(&mut self) {
        for name in self.names() {
            self.spawn(name);
        }
        for name in self.names() {
            self.wait_ready(name).await;
        }
    }

    /// Start one instance (if it is not running) and wait until it is ready.
    pub async fn start(&mut self, name: &str) {
        let name = self.key(name);
        self.spawn(name);
        self.wait_ready(name).await;
    }

    /// SIGTERM, as systemd or Docker stop a service, and wait until it exited.
    pub async fn stop(&mut self, name: &str) {
        let Some(mut child) = self.running.remove(name) else {
            return;
        };
        self.mark(name, "SIGTERM");
        let pid = child.id().expect("a running child has a pid").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM to {name} failed");
        if tokio::time::timeout(STOP_WITHIN, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
            panic!("{name} did not exit within {STOP_WITHIN:?} of SIGTERM (see its log)");
        }
    }

    /// SIGKILL, as a crash or the OOM killer would; reaped before returning.
    pub async fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.running.remove(name) {
            self.mark(name, "SIGKILL");
            child.kill().await.unwrap();
        }
    }

    /// SIGTERM every running instance.
    pub async fn stop_all(&mut self) {
        let running: Vec<_> = self.running.keys().copied().collect();
        for name in running {
            self.stop(name).await;
        }
    }

    /// Instances that exited without being told to (a service never should), with how.
    pub fn exited(&mut self) -> Vec<String> {
        let gone: Vec<_> = self
            .running
            .iter_mut()
            .filter_map(|(name, c)| Some((*name, c.try_wait().ok()??)))
            .collect();
        for (name, _) in &gone {
            self.running.remove(name);
        }
        gone.iter().map(|(n, s)| format!("{n}: {s}")).collect()
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    fn instance(&self, name: &str) -> &Instance {
        let known = self.instances.get(name);
        known.unwrap_or_else(|| panic!("no instance named {name}: {:?}", self.names()))
    }

    /// The `'static` name of an instance.
    fn key(&self, name: &str) -> &'static str {
        let known = self.instances.keys().find(|k| **k == name);
        known.unwrap_or_else(|| panic!("no instance named {name}: {:?}", self.names()))
    }

    fn spawn(&mut self, name: &'static str) {
        if self.running.contains_key(name) {
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .unwrap();
        let instance = self.instance(name);
        let child = Command::new(self.bin_dir.join(instance.binary))
            .envs(instance.env.iter().map(|(k, v)| (k, v)))
            .env("FERRY_CONFIG", &self.config_path)
            .env_remove("RUST_LOG")
            // Plain text in the log files.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // A test that panics leaves no service behind.
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.running.insert(name, child);
    }

    async fn wait_ready(&self, name: &str) {
        let addr = self.admin(name);
        let ready = ferry_testkit::wait_until(READY_WITHIN, || async {
            matches!(
                http_request(addr, "GET", "/readyz", &[], b"").await,
                Ok((200, _))
            )
        })
        .await;
        let log = self.log(name);
        assert!(
            ready,
            "{name} was not ready within {READY_WITHIN:?}; its log: {}",
            log.display()
        );
    }

    /// A marker line in the instance's log, so a reader sees where it was stopped.
    fn mark(&self, name: &str, how: &str) {
        use std::io::Write as _;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log(name));
        if let Ok(mut f) = file {
            let _ = writeln!(f, "----- ferry-e2e: {how} -----");
        }
    }
}

//! Test support: the real components started by `tests/run.sh`, found through its
//! environment variables (never guessed), plus helpers to look inside RabbitMQ.

mod broker;
pub mod browser;
pub mod build;
pub mod cluster;
pub mod control;
mod docker;
mod docker_events;
pub mod load;
pub mod postgres;
pub mod project;
pub mod prometheus;
pub mod rancher;
mod tap;
pub mod tls;

pub use broker::{PrivateBroker, close_connections_named};
pub use docker::{
    BUSYBOX_BASE, PROXY_IMAGE, build_and_push, build_docker_host, docker, docker_hosts,
    ensure_busybox_base, ensure_proxy_image, flaky_web_image, slow_web_image, web_image,
};
pub use docker_events::EventLog;
pub use prometheus::{Prometheus, ScrapeJob};
pub use tap::Tap;

use ferry_shared::config::BrokerConfig;
use ferry_shared::secret::Secret;
use std::future::Future;
use std::time::{Duration, Instant};

/// A variable set by the test harness; fails with instructions when it is missing.
pub fn harness_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through tests/run.sh (or `source <state>/env` after `tests/run.sh --keep`)")
    })
}

/// The shared RabbitMQ of the test run.
pub fn amqp_url() -> String {
    harness_var("FERRY_TEST_AMQP_URL")
}

/// A fresh namespace, so each test has its own exchange and queues.
pub fn unique_namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Broker settings for a test: own namespace, short delays and timeouts.
pub fn broker_config(url: &str) -> BrokerConfig {
    BrokerConfig {
        url: Secret::new(url.to_owned()),
        namespace: unique_namespace(),
        heartbeat_secs: 2,
        connect_timeout_ms: 2_000,
        publish_timeout_ms: 3_000,
        reconnect_max_delay_ms: 500,
        retry_delays_ms: vec![300, 600],
        max_attempts: 3,
        ..BrokerConfig::default()
    }
}

/// A free TCP port on loopback for a server a test starts later (a container, a
/// service). Taken below the kernel's ephemeral range, so no client socket or `:0` bind
/// grabs it meanwhile, and reserved for the whole test run (a file in the run's state
/// directory), so two tests running at once never get the same one.
pub fn free_port() -> u16 {
    let dir = std::env::var("FERRY_TEST_STATE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join("ports");
    let _ = std::fs::create_dir_all(&dir);
    // Spread the tests over the range: the process id and a clock make the start.
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or_default();
    const FIRST: u64 = 20_000;
    const COUNT: u64 = 12_000; // up to 31999, below Linux's ephemeral 32768
    for i in 0..COUNT {
        let port = (FIRST + (seed.wrapping_mul(7_919) + i) % COUNT) as u16;
        let reserved = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(port.to_string()))
            .is_ok();
        if reserved && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + COUNT - 1
    )
}

/// Poll `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages ready in a queue (0 if it does not exist).
pub async fn queue_len(url: &str, queue: &str) -> anyhow::Result<u32> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let n = match ch
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
    {
        Ok(q) => q.message_count(),
        Err(_) => 0,
    };
    let _ = conn.close(200, "bye".into()).await;
    Ok(n)
}

/// Take one message from a queue (acked), with its headers.
pub async fn get_one(
    url: &str,
    queue: &str,
) -> anyhow::Result<Option<lapin::message::BasicGetMessage>> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let msg = ch
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await?;
    let _ = conn.close(200, "bye".into()).await;
    Ok(msg)
}

/// A handler made of a closure, for tests.
pub struct FnHandler<F>(pub F);

impl<F, Fut> ferry_shared::bus::Handler for FnHandler<F>
where
    F: Fn(ferry_shared::bus::Context, ferry_shared::event::Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ferry_shared::bus::Outcome> + Send,
{
    fn handle(
        &self,
        ctx: ferry_shared::bus::Context,
        event: ferry_shared::event::Envelope,
    ) -> impl Future<Output = ferry_shared::bus::Outcome> + Send {
        (self.0)(ctx, event)
    }
}

/// A `source.changed` event for project `shop` at `revision`.
pub fn source_changed(revision: &str) -> ferry_shared::event::Envelope {
    ferry_shared::event::Envelope::new_run(
        "shop",
        ferry_shared::event::Event::SourceChanged(ferry_shared::event::SourceChanged {
            source: "manual".into(),
            repository: "svn://127.0.0.1/shop".into(),
            reference: None,
            revision: revision.into(),
            author: Some("alice".into()),
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

/// A minimal HTTP/1.1 request over loopback (no client library needed):
/// returns the status code and the body.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A stage service started in-process, consuming once this returns.
pub struct RunningStage {
    pub metrics: std::sync::Arc<ferry_shared::metrics::Metrics>,
    trigger: ferry_shared::shutdown::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

/// Bind and run a stage service, and wait until it consumes (its queue is declared
/// and bound, so events published from now on reach it).
pub async fn spawn_stage<H: ferry_shared::bus::Handler>(
    cfg: &ferry_shared::config::FerryConfig,
    spec: ferry_shared::bus::StageSpec,
    defaults: ferry_shared::service::ServiceDefaults,
    handler: H,
) -> RunningStage {
    let svc = ferry_shared::service::StageService::bind(cfg, spec, defaults, handler)
        .await
        .expect("binding the stage service");
    let metrics = svc.metrics.clone();
    let (trigger, stop) = ferry_shared::shutdown::channel();
    let task = tokio::spawn(async move {
        svc.run_until_stopped(stop.wait_owned())
            .await
            .expect("stage service failed")
    });
    let m = metrics.clone();
    let connected = wait_until(Duration::from_secs(10), || {
        let m = m.clone();
        async move { m.connected() }
    })
    .await;
    assert!(connected, "the stage service did not connect to RabbitMQ");
    RunningStage {
        metrics,
        trigger,
        task,
    }
}

impl RunningStage {
    pub async fn stop(self) {
        self.trigger.trigger();
        self.task.await.expect("stage service task panicked");
    }
}

/// Run the workspace's `ferry` binary (built by tests/run.sh next to the test binaries).
pub fn ferry_cli(args: &[&str]) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let ferry = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("ferry");
    std::process::Command::new(&ferry)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; build it with `cargo build --workspace --bins`",
                ferry.display()
            )
        })
}

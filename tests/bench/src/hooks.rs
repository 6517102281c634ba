//! Confirmed hooks per second and accept latency: GitLab push hooks over keep-alive
//! HTTP/1.1 connections on loopback, each with its own delivery id, so each one is a
//! real publish with confirm into a quorum queue.
//!
//! Under slowloris: 2,000 connections that send their headers (or, authenticated,
//! their body) a byte at a time and never finish, spread over loopback addresses
//! 127.0.0.2, .3, ... (Linux answers the whole 127.0.0.0/8) at most
//! `hooks.max_connections_per_address` each, so they all hold places; then the time
//! one real signed hook from 127.0.0.1 takes to be accepted (202).
//!
//! Over the per-address cap: one address opens more slow connections than its cap
//! (the rest are refused), then the same measure for a hook from another address.

use anyhow::Context as _;
use ferry_shared::bus::Topology;
use ferry_shared::config::FerryConfig;
use ferry_shared::shutdown;
use hook_receiver::HookReceiver;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BODY: &[u8] = include_bytes!("../../../shared/hooks/tests/fixtures/gitlab-push.json");
const TOKEN: &str = "bench-gitlab-token";

pub struct Figures {
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn accept(url: &str, connections: usize, requests: usize) -> anyhow::Result<Figures> {
    let cfg = config(url)?;
    // The builder's real queue (quorum, durable) receives the events.
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    Topology::for_stage(&cfg.broker, &ferry_shared::pipeline::stage("builder"))
        .declare(&ch)
        .await?;

    let receiver = HookReceiver::bind(cfg.clone()).await?;
    let addr = receiver.addr;
    let (trigger, stop) = shutdown::channel();
    let server = tokio::spawn(receiver.run_until_stopped(stop.wait_owned()));

    // Warm up the connection pool and the publisher's lanes.
    run_load(addr, connections, connections * 10, "warm").await?;
    let started = Instant::now();
    let mut latencies = run_load(addr, connections, requests, "run").await?;
    let elapsed = started.elapsed();

    trigger.trigger();
    server.await??;
    for q in &Topology::for_stage(&cfg.broker, &ferry_shared::pipeline::stage("builder")).queues {
        let _ = ch
            .queue_delete(q.name.as_str().into(), Default::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;

    latencies.sort_unstable();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    Ok(Figures {
        per_s: requests as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    })
}

/// Slow connections from 127.0.0.2 on, `per_address` from each.
pub fn spread(slow: usize, per_address: usize) -> Vec<IpAddr> {
    (0..slow)
        .map(|i| {
            let n = 2 + (i / per_address.max(1)) as u32;
            IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n))
        })
        .collect()
}

/// With slow connections held open a byte at a time, one from each of `sources`, how
/// long (ms) one real signed hook from 127.0.0.1 takes to be answered 202.
pub async fn accept_under_slowloris(url: &str, sources: Vec<IpAddr>) -> anyhow::Result<f64> {
    let slow = sources.len();
    let cfg = config(url)?;
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let topology = Topology::for_stage(&cfg.broker, &ferry_shared::pipeline::stage("builder"));
    topology.declare(&ch).await?;
    let receiver = HookReceiver::bind(cfg.clone()).await?;
    let addr = receiver.addr;
    let (trigger, stop) = shutdown::channel();
    let server = tokio::spawn(receiver.run_until_stopped(stop.wait_owned()));
    // One ordinary hook first, so the publisher is connected, as in service.
    run_load(addr, 1, 1, "slowloris-warm").await?;

    // Half send headers that never end, half authenticated bodies that never end.
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel::<()>(slow);
    let (release, released) = tokio::sync::watch::channel(false);
    let mut attackers = Vec::with_capacity(slow);
    for (i, from) in sources.into_iter().enumerate() {
        let (held, mut released) = (held_tx.clone(), released.clone());
        attackers.push(tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket
                .bind(SocketAddr::new(from, 0))
                .with_context(|| format!("cannot bind a client socket to {from}"))?;
            let mut s = socket.connect(addr).await?;
            let head = if i % 2 == 0 {
                "POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\nX-Gitlab-Tok".to_owned()
            } else {
                format!(
                    "POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: {TOKEN}\r\nContent-Length: {}\r\n\r\n",
                    BODY.len()
                )
            };
            // The first bytes at once, so every connection is open before measuring.
            // (Over the per-address cap the connection is answered 503 and closed:
            // it still counts as opened.)
            let _ = s.write_all(&head.as_bytes()[..8]).await;
            let _ = held.send(()).await;
            for b in head.as_bytes()[8..].iter().chain(BODY) {
                tokio::select! {
                    _ = released.wait_for(|r| *r) => return anyhow::Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                if s.write_all(&[*b]).await.is_err() {
                    // Cut by the receiver: what it should do with slow clients.
                    return anyhow::Ok(());
                }
            }
            anyhow::Ok(())
        }));
    }
    drop(held_tx);
    for _ in 0..slow {
        held_rx
            .recv()
            .await
            .context("a slow connection could not be opened")?;
    }
    let t0 = Instant::now();
    let mut real = run_load(addr, 1, 1, "slowloris-real").await?;
    let took = t0.elapsed();
    anyhow::ensure!(real.pop().is_some(), "the real hook got no answer");

    release.send_replace(true);
    for a in attackers {
        a.await.context("slow connection task panicked")??;
    }
    trigger.trigger();
    server.await??;
    for q in &topology.queues {
        let _ = ch
            .queue_delete(q.name.as_str().into(), Default::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;
    Ok(took.as_secs_f64() * 1e3)
}

fn config(url: &str) -> anyhow::Result<Arc<FerryConfig>> {
    let ns = ferry_testkit::unique_namespace();
    let text = format!(
        r#"
        [log]
        level = "warn"
        [broker]
        url = "{url}"
        namespace = "{ns}"
        [hooks]
        gitlab_token = "{TOKEN}"
        [services.hook_receiver]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [projects.shop]
        image = "shop/web"
        source = {{ kind = "git", url = "https://gitlab.example.com/mike/diaspora.git", repository = "mike/diaspora", branches = ["master"] }}
        "#
    );
    Ok(Arc::new(FerryConfig::from_toml_with_env(
        &text,
        Path::new("bench.toml"),
    )?))
}

async fn run_load(
    addr: SocketAddr,
    connections: usize,
    requests: usize,
    label: &'static str,
) -> anyhow::Result<Vec<Duration>> {
    let per_conn = requests / connections;
    let mut tasks = Vec::new();
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut stream = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(per_conn);
            for i in 0..per_conn {
                let head = format!(
                    "POST /hooks/gitlab HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: {TOKEN}\r\nIdempotency-Key: {label}-{c}-{i}\r\nContent-Length: {}\r\n\r\n",
                    BODY.len()
                );
                let t0 = Instant::now();
                stream.get_mut().write_all(head.as_bytes()).await?;
                stream.get_mut().write_all(BODY).await?;
                let status = read_response(&mut stream).await?;
                latencies.push(t0.elapsed());
                anyhow::ensure!(status == 202, "hook answered {status}, not 202");
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for t in tasks {
        all.extend(t.await.context("load task panicked")??);
    }
    Ok(all)
}

/// Read one HTTP/1.1 response (status line, headers, Content-Length body); its status.
async fn read_response(stream: &mut BufReader<TcpStream>) -> anyhow::Result<u16> {
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

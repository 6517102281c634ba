//! Serving connections so that no client can hold the door open: a cap on open
//! connections per client address and one on all of them (the rest are answered 503
//! and closed), a deadline for each request's headers and for a TLS handshake (hyper's
//! `header_read_timeout`, which also ends an idle keep-alive connection), TLS when
//! configured, and a stop that waits for requests in progress at most
//! `shutdown_grace_secs`.

mod fd_limit;
mod per_address;

pub use fd_limit::raise_fd_limit;
use per_address::PerAddress;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// Connections over the cap being answered 503 at once; beyond that they are closed
/// without an answer (an answer costs a task for up to a second).
const REFUSING_AT_ONCE: usize = 64;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one address may have open (0: no limit).
    pub max_connections_per_address: usize,
    /// Their connections are not capped per address: they carry many clients.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    pub header_timeout: Duration,
    /// How long a stop waits for requests in progress before cutting them.
    pub grace: Duration,
}

/// Serve `router` on `listener` until `stop` resolves, then let requests in progress
/// finish for at most `limits.grace` and cut whatever is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let refusals = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, or a client gone before accept: the
                    // connections already open go on; try again shortly.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        // The address's own cap first: one host holding every place is what it stops.
        let entered = match limits.trusted_proxies.trusts(peer.ip()) {
            true => Ok(None),
            false => per_address.enter(peer.ip()),
        };
        let Ok(place) = entered else {
            tracing::debug!(%peer, "connection refused: hooks.max_connections_per_address reached");
            refuse(&mut tasks, &refusals, tcp, tls.is_some(), PER_ADDRESS_FULL);
            continue;
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = Connection {
                    router: router.clone(),
                    tls: tls.clone(),
                    watcher: graceful.watcher(),
                    header_timeout: limits.header_timeout,
                    peer,
                };
                tasks.spawn(async move {
                    conn.serve(tcp).await;
                    drop((permit, place));
                });
            }
            Err(_) => {
                tracing::debug!(%peer, "connection refused: hooks.max_connections reached");
                drop(place);
                refuse(&mut tasks, &refusals, tcp, tls.is_some(), ALL_FULL);
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = limits.grace.as_secs(),
            "requests still in progress after the shutdown grace period were cut"
        );
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

struct Connection {
    router: Router,
    tls: Option<TlsAcceptor>,
    watcher: Watcher,
    header_timeout: Duration,
    peer: SocketAddr,
}

impl Connection {
    async fn serve(self, tcp: TcpStream) {
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = self.tls.clone() else {
            return self.http(tcp).await;
        };
        match tokio::time::timeout(self.header_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => self.http(tls).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake too slow: cut"),
        }
    }

    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, router) = (self.peer, self.router);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .serve_connection(TokioIo::new(io), service);
        if let Err(e) = self.watcher.watch(conn).await {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }
}

const ALL_FULL: &str =
    r#"{"error":"too many connections (hooks.max_connections): try again shortly"}"#;
const PER_ADDRESS_FULL: &str = r#"{"error":"too many connections from this address (hooks.max_connections_per_address): try again shortly"}"#;

/// Refuse a connection over a cap: with plain HTTP a 503 with `body` when few are
/// being answered already, otherwise (and always with TLS, where an answer would cost
/// a handshake) just close it.
fn refuse(
    tasks: &mut JoinSet<()>,
    refusals: &Arc<Semaphore>,
    tcp: TcpStream,
    tls: bool,
    body: &'static str,
) {
    if !tls && let Ok(slot) = refusals.clone().try_acquire_owned() {
        tasks.spawn(async move {
            answer_503(tcp, body).await;
            drop(slot);
        });
    }
}

/// Answer a connection over a cap with a 503 and close it. What the client sent is
/// read and dropped first, so that closing does not reset the connection before the
/// client has read the answer.
async fn answer_503(mut tcp: TcpStream, body: &str) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 4096];
        while tcp.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

//! hook-receiver: the front door. Accepts triggers over HTTP and answers `202` only
//! once the run's first event is confirmed by RabbitMQ.
//!
//! This first version takes manual triggers (`POST /hooks/manual`); the forge and SVN
//! webhooks come with the hook-receiver issue.

mod manual;

use axum::Router;
use axum::routing::post;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::metrics::Metrics;
use ferry_shared::service::{ServiceError, listen};
use ferry_shared::{admin, shutdown};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

pub const SERVICE: &str = "hook-receiver";
pub const DEFAULT_ADMIN_PORT: u16 = 9601;
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<FerryConfig>,
    pub publisher: Publisher,
}

pub struct HookReceiver {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    state: AppState,
    listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hooks/manual", post(manual::trigger))
        .with_state(state)
}

impl HookReceiver {
    pub async fn bind(cfg: Arc<FerryConfig>) -> Result<Self, ServiceError> {
        let own = cfg.service(SERVICE);
        let metrics = Metrics::new(SERVICE);
        let publisher = Publisher::new(&cfg.broker, SERVICE, Some(metrics.clone()));
        let addr = own
            .listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)));
        let listener = listen(addr, "webhook endpoint", "listen").await?;
        let admin = ferry_shared::service::admin_addr(&cfg, SERVICE, DEFAULT_ADMIN_PORT);
        let admin_listener = listen(admin, "admin endpoints", "admin_listen").await?;
        let local = |l: &tokio::net::TcpListener, fallback| l.local_addr().unwrap_or(fallback);
        Ok(Self {
            addr: local(&listener, addr),
            admin_addr: local(&admin_listener, admin),
            metrics,
            state: AppState { cfg, publisher },
            listener,
            admin_listener,
        })
    }

    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let (trigger, shutdown) = shutdown::channel();
        tracing::info!(service = SERVICE, listen = %self.addr, admin = %self.admin_addr, "started");
        // Readiness of a publish-only service: can it reach the broker right now?
        let probe = {
            let (publisher, metrics, mut shutdown) = (
                self.state.publisher.clone(),
                self.metrics.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                loop {
                    metrics
                        .broker_connected
                        .store(publisher.check().await, Relaxed);
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            })
        };
        let admin = axum::serve(self.admin_listener, admin::router(self.metrics.clone()))
            .with_graceful_shutdown(shutdown.clone().wait_owned());
        let admin = tokio::spawn(async move { admin.await });
        let publisher = self.state.publisher.clone();
        // Requests in progress finish (their publishes are confirmed) before exiting.
        let served =
            axum::serve(self.listener, router(self.state)).with_graceful_shutdown(async move {
                stop.await;
                trigger.trigger();
            });
        let result = served.await;
        let _ = admin.await;
        let _ = probe.await;
        publisher.close();
        result.map_err(|source| ServiceError::Listen {
            what: "webhook endpoint",
            key: "listen",
            addr: self.addr,
            source,
        })
    }
}

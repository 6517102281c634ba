//! What every stage service does around its handler: admin endpoints, the consumer,
//! the publisher, and an orderly stop. A service's `main.rs` is then three lines.

use crate::admin;
use crate::bus::{BusError, Consumer, ConsumerOptions, Handler, Publisher, Settled, StageSpec};
use crate::config::{EXIT_BAD_CONFIG, FerryConfig, HostFiles, config_path};
use crate::metrics::Metrics;
use crate::shutdown;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// A service's built-in settings, overridden by `[services.<name>]`.
#[derive(Clone, Copy, Debug)]
pub struct ServiceDefaults {
    pub admin_port: u16,
    pub prefetch: u16,
    pub handler_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Whether the service talks to deploy hosts, and so needs their credential files.
    pub host_files: HostFiles,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "cannot listen on {addr} for the {what}: {source}; set services.<name>.{key} to a free address"
    )]
    Listen {
        what: &'static str,
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A setting that passed the start-up checks but cannot be used now (a TLS file
    /// changed in between).
    #[error("{0}")]
    Config(crate::config::Problem),
}

/// Load the configuration named by `FERRY_CONFIG` and start logging; on a bad
/// configuration print every problem and exit with code 64. The deploy hosts' credential
/// files are checked only for a service that opens them (`host_files`).
pub fn load_config_or_exit(service: &str, host_files: HostFiles) -> Arc<FerryConfig> {
    let path = config_path();
    match FerryConfig::load_for(&path, host_files) {
        Ok(mut cfg) => {
            // From here on the process is this service: every connection it opens
            // (consumer, publisher, locks, holds) uses its own broker user.
            cfg.broker = cfg.broker_for(service);
            crate::telemetry::init(&cfg.log);
            tracing::info!(service, config = %path.display(), "configuration loaded");
            for w in cfg.network_warnings() {
                tracing::warn!(service, "{w}");
            }
            Arc::new(cfg)
        }
        Err(e) => {
            eprintln!("{service}: {e}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    }
}

/// The process exit code for how a service ended.
pub fn exit_code(service: &str, result: Result<(), ServiceError>) -> ExitCode {
    match result {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service, "{e}");
            eprintln!("{service}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn admin_addr(cfg: &FerryConfig, service: &str, default_port: u16) -> SocketAddr {
    cfg.service(service)
        .admin_listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, default_port)))
}

/// Bind a listener, with an error that names the setting to change.
pub async fn listen(
    addr: SocketAddr,
    what: &'static str,
    key: &'static str,
) -> Result<tokio::net::TcpListener, ServiceError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Listen {
            what,
            key,
            addr,
            source,
        })
}

/// Run a service future on a fresh multi-threaded runtime and turn its end into an exit code.
pub fn block_on_service(
    service: &str,
    fut: impl Future<Output = Result<(), ServiceError>>,
) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => exit_code(service, rt.block_on(fut)),
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A stage service with its admin listener bound, ready to run.
pub struct StageService<H> {
    pub admin_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub publisher: Publisher,
    consumer: Consumer<H>,
    admin_listener: tokio::net::TcpListener,
}

impl<H: Handler> StageService<H> {
    pub async fn bind(
        cfg: &FerryConfig,
        spec: StageSpec,
        defaults: ServiceDefaults,
        handler: H,
    ) -> Result<Self, ServiceError> {
        let service = spec.service;
        let own = cfg.service(service);
        let metrics = Metrics::new(service);
        let publisher = Publisher::new(&cfg.broker, service, Some(metrics.clone()));
        let opts = ConsumerOptions {
            prefetch: own.prefetch.unwrap_or(defaults.prefetch),
            handler_timeout: Duration::from_secs(
                own.handler_timeout_secs
                    .unwrap_or(defaults.handler_timeout_secs),
            ),
            shutdown_grace: Duration::from_secs(
                own.shutdown_grace_secs
                    .unwrap_or(defaults.shutdown_grace_secs),
            ),
        };
        let consumer = Consumer::new(
            cfg.broker.clone(),
            spec,
            opts,
            handler,
            publisher.clone(),
            metrics.clone(),
        );
        let addr = admin_addr(cfg, service, defaults.admin_port);
        let admin_listener = listen(addr, "admin endpoints", "admin_listen").await?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| ServiceError::Listen {
                what: "admin endpoints",
                key: "admin_listen",
                addr,
                source,
            })?;
        Ok(Self {
            admin_addr,
            metrics,
            publisher,
            consumer,
            admin_listener,
        })
    }

    pub fn settled(&self) -> broadcast::Receiver<Settled> {
        self.consumer.settled()
    }

    pub fn queue(&self) -> String {
        self.consumer.queue()
    }

    /// Consume until `stop` resolves, then stop consuming, let running handlers
    /// finish (or requeue them after the grace period) and close connections.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let (trigger, shutdown) = shutdown::channel();
        let admin = axum::serve(self.admin_listener, admin::router(self.metrics.clone()))
            .with_graceful_shutdown(shutdown.clone().wait_owned());
        let admin = tokio::spawn(async move { admin.await });
        let consumer = self.consumer.run(shutdown);
        tokio::pin!(consumer);
        let result = tokio::select! {
            r = &mut consumer => r,
            _ = stop => {
                tracing::info!("stop requested: no new deliveries, finishing running handlers");
                trigger.trigger();
                consumer.await
            }
        };
        trigger.trigger();
        let _ = admin.await;
        self.publisher.close();
        Ok(result?)
    }
}

/// `main` of a stage service: config, telemetry, run until SIGTERM.
pub fn run_stage_main<H: Handler>(
    spec: StageSpec,
    defaults: ServiceDefaults,
    make: impl FnOnce(Arc<FerryConfig>) -> H,
) -> ExitCode {
    run_stage_main_with(spec, defaults, |_, d| d, make)
}

/// [`run_stage_main`] for a stage whose defaults depend on the configuration (the
/// builder's prefetch is its build slots).
pub fn run_stage_main_with<H: Handler>(
    spec: StageSpec,
    defaults: ServiceDefaults,
    adjust: impl FnOnce(&FerryConfig, ServiceDefaults) -> ServiceDefaults,
    make: impl FnOnce(Arc<FerryConfig>) -> H,
) -> ExitCode {
    let service = spec.service;
    let cfg = load_config_or_exit(service, defaults.host_files);
    let defaults = adjust(&cfg, defaults);
    block_on_service(service, async {
        let handler = make(cfg.clone());
        let svc = StageService::bind(&cfg, spec, defaults, handler).await?;
        tracing::info!(service, admin = %svc.admin_addr, "started");
        svc.run_until_stopped(shutdown::signal()).await
    })
}

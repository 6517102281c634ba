//! hook-receiver: the front door. Accepts triggers over HTTP and answers `202` only
//! once the run's first event is confirmed by RabbitMQ.
//!
//! Endpoints: `POST /hooks/{gitlab,github,gitea,svn,harbor,manual}`. Each request is
//! authenticated on its raw bytes, parsed once into a typed trigger, matched to the
//! configured projects (all three by `ferry_hooks`), and published as one event per run.
//!
//! It also serves the operator API under `/api` (see `api`), which reads the run
//! history stream into memory (see `runs`): on the webhook port, or only on
//! `api_listen` when that is set. Connections are served by `door` (caps, read
//! deadlines, TLS). With `[ledger] url` set, it also records the history into the ledger
//! and reads the older runs back from there at start-up (see `ledger`).

mod api;
pub mod auth_limit;
pub mod client_addr;
mod dashboard;
pub mod dedup;
pub mod delivery;
pub mod door;
mod ledger;
mod older;
pub mod registry;
mod routes;
pub mod runs;

use axum::Router;
use axum::routing::post;
use ferry_hooks::trigger;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::metrics::Metrics;
use ferry_shared::secret::Secret;
use ferry_shared::service::{ServiceError, listen};
use ferry_shared::{admin, shutdown};
use prometheus_client::metrics::counter::Counter;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

pub const SERVICE: &str = "hook-receiver";
pub const DEFAULT_ADMIN_PORT: u16 = 9601;
pub const DEFAULT_PORT: u16 = 8080;
/// How long a stop waits for requests in progress (`shutdown_grace_secs`).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// What every request needs.
pub struct App {
    pub cfg: Arc<FerryConfig>,
    pub publisher: Publisher,
    pub dedup: dedup::Dedup,
    pub runs: runs::RunIndex,
    /// Operator tokens by digest, with each operator's scope.
    pub operators: ferry_shared::config::operators::OperatorKeys,
    pub auth_limit: auth_limit::AuthLimit,
    /// The run ledger, once the recorder opened it: where a delivery another replica
    /// took is recognised (`[ledger] url`; the dedup memory is a cache in front of it).
    pub ledger: std::sync::OnceLock<Arc<ferry_ledger::Ledger>>,
    /// Who the client is behind `hooks.trusted_proxies`, for `auth_limit`.
    pub proxies: client_addr::TrustedProxies,
    /// The dashboard's session cookies.
    pub sessions: dashboard::session::Sessions,
    /// Each event the history follower records, for the dashboard's live updates.
    pub live: tokio::sync::broadcast::Sender<dashboard::live::Moved>,
    /// The dashboard's delivery figures, kept for a few seconds per window.
    pub delivery: dashboard::DeliveryCache,
    counters: Counters,
}

struct Counters {
    accepted: Counter,
    ignored: Counter,
    rejected: Counter,
    unavailable: Counter,
}

impl App {
    /// The secret a source must prove; `None` when the source is not enabled.
    pub fn secret(&self, source: trigger::Source) -> Option<&Secret<String>> {
        let h = &self.cfg.hooks;
        match source {
            trigger::Source::Gitlab => h.gitlab_token.as_ref(),
            trigger::Source::Github => h.github_secret.as_ref(),
            trigger::Source::Gitea => h.gitea_secret.as_ref(),
            trigger::Source::Git => h.git_token.as_ref(),
            trigger::Source::Svn => h.svn_token.as_ref(),
            trigger::Source::Harbor => h.harbor_auth.as_ref(),
            trigger::Source::Manual => h.manual_token.as_ref(),
        }
    }
}

pub struct HookReceiver {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Where the operator API is served when it has its own address.
    pub api_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
    api_listener: Option<tokio::net::TcpListener>,
    tls: Option<TlsAcceptor>,
    limits: door::Limits,
}

/// Webhooks, the operator API and the dashboard on one port.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/hooks/{source}", post(routes::receive))
        .merge(api::router())
        .merge(dashboard::router())
        .fallback(routes::not_found)
        .with_state(app)
}

/// Webhooks only: `/api` answers 404 here.
fn hooks_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/hooks/{source}", post(routes::receive))
        .fallback(routes::not_found)
        .with_state(app)
}

/// The operator API and the dashboard only.
fn api_router(app: Arc<App>) -> Router {
    api::router()
        .merge(dashboard::router())
        .fallback(routes::not_found)
        .with_state(app)
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
        let api_listener = match own.api_listen {
            Some(a) => Some(listen(a, "operator API", "api_listen").await?),
            None => None,
        };
        let tls = match (&own.tls_cert, &own.tls_key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(Arc::new(
                ferry_shared::config::tls_server_config(cert, key).map_err(ServiceError::Config)?,
            ))),
            _ => None,
        };
        let proxies = client_addr::TrustedProxies::new(&cfg.hooks.trusted_proxies);
        let limits = door::Limits {
            max_connections: cfg.hooks.max_connections,
            max_connections_per_address: cfg.hooks.connections_per_address(),
            trusted_proxies: proxies.clone(),
            header_timeout: Duration::from_secs(cfg.hooks.header_timeout_secs),
            grace: Duration::from_secs(
                own.shutdown_grace_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
        };
        let local = |l: &tokio::net::TcpListener, fallback| l.local_addr().unwrap_or(fallback);
        Ok(Self {
            addr: local(&listener, addr),
            admin_addr: local(&admin_listener, admin),
            api_addr: api_listener
                .as_ref()
                .zip(own.api_listen)
                .map(|(l, a)| local(l, a)),
            metrics: metrics.clone(),
            app: Arc::new(App {
                dedup: dedup::Dedup::new(Duration::from_secs(cfg.hooks.dedup_window_secs)),
                runs: runs::RunIndex::default(),
                operators: ferry_shared::config::operators::OperatorKeys::new(&cfg.operators),
                auth_limit: auth_limit::AuthLimit::new(cfg.hooks.auth_failures_per_minute),
                ledger: std::sync::OnceLock::new(),
                proxies,
                sessions: dashboard::session::Sessions::new(
                    cfg.dashboard
                        .session_secret
                        .as_ref()
                        .map(|s| s.expose().as_str()),
                    Duration::from_secs(u64::from(cfg.dashboard.session_hours) * 3600),
                ),
                live: tokio::sync::broadcast::channel(256).0,
                delivery: Default::default(),
                counters: Counters {
                    accepted: metrics.counter(
                        "ferry_hooks_accepted_total",
                        "Hooks that started runs (202).",
                    ),
                    ignored: metrics.counter(
                        "ferry_hooks_ignored_total",
                        "Hooks understood and ignored (200).",
                    ),
                    rejected: metrics.counter("ferry_hooks_rejected_total", "Hooks refused (4xx)."),
                    unavailable: metrics.counter(
                        "ferry_hooks_unavailable_total",
                        "Hooks refused because the broker was unreachable (503).",
                    ),
                },
                cfg,
                publisher,
            }),
            listener,
            admin_listener,
            api_listener,
            tls,
            limits,
        })
    }

    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let (trigger, shutdown) = shutdown::channel();
        tracing::info!(
            service = SERVICE,
            listen = %self.addr,
            admin = %self.admin_addr,
            api = ?self.api_addr,
            tls = self.tls.is_some(),
            "started"
        );
        // Readiness of a publish-only service: can it reach the broker right now?
        let probe = {
            let (publisher, metrics, mut shutdown) = (
                self.app.publisher.clone(),
                self.metrics.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                loop {
                    metrics.set_connected(publisher.check().await);
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            })
        };
        // The run history behind `ferry runs` and `ferry rollback --to`.
        let history = {
            let app = self.app.clone();
            tokio::spawn(async move {
                let cfg = app.cfg.clone();
                let last_env = |project: &str| {
                    cfg.projects
                        .get(project)
                        .and_then(|p| p.environments.last().cloned())
                };
                if let Some(url) = app.cfg.ledger.url() {
                    ledger::preload(&url, &app.runs, last_env).await;
                }
                let e = ferry_shared::bus::history::follow(app.cfg.broker.clone(), |event| {
                    let moved = dashboard::live::Moved {
                        run_id: event.run_id.into(),
                        project: event.project.clone(),
                    };
                    app.runs.record(event, last_env);
                    // Nobody watching is no error.
                    let _ = app.live.send(moved);
                })
                .await;
                tracing::error!("the run history cannot be read: {e}");
            })
        };
        // Every event into the ledger, when there is one.
        let recorder = self.app.cfg.ledger.url().map(|url| {
            let counters = ledger::Counters {
                recorded: self.metrics.counter(
                    "ferry_ledger_events_recorded_total",
                    "Events this replica added to the ledger (others were there already).",
                ),
                errors: self.metrics.counter(
                    "ferry_ledger_errors_total",
                    "Failed ledger writes and openings (each is tried again).",
                ),
            };
            let pipeline = delivery::metrics::Pipeline::register(&self.metrics);
            let delivery = Arc::new(delivery::Delivery::new(self.app.cfg.clone(), pipeline));
            tokio::spawn(ledger::record(self.app.clone(), url, counters, delivery))
        });
        // Runs older than `ledger.keep_days` pruned from it, when set.
        let retention = &self.app.cfg.ledger;
        let pruner = retention.url().and(retention.keep_days).map(|days| {
            let pruned = self.metrics.counter(
                "ferry_ledger_pruned_runs_total",
                "Runs this replica pruned from the ledger (`ledger.keep_days`).",
            );
            tokio::spawn(ledger::prune(self.app.clone(), days, pruned))
        });
        let admin = axum::serve(self.admin_listener, admin::router(self.metrics.clone()))
            .with_graceful_shutdown(shutdown.clone().wait_owned());
        let admin = tokio::spawn(async move { admin.await });
        let publisher = self.app.publisher.clone();
        // The operator API on its own address, when it has one; it stops with the rest.
        let (hooks, api) = match self.api_listener {
            None => (router(self.app.clone()), None),
            Some(l) => {
                let serve = door::serve(
                    l,
                    api_router(self.app.clone()),
                    self.tls.clone(),
                    self.limits.clone(),
                    shutdown.clone().wait_owned(),
                );
                (hooks_router(self.app.clone()), Some(tokio::spawn(serve)))
            }
        };
        // Requests in progress finish (their publishes are confirmed) before exiting,
        // within the grace period.
        door::serve(self.listener, hooks, self.tls, self.limits, async move {
            stop.await;
            trigger.trigger();
        })
        .await;
        if let Some(api) = api {
            let _ = api.await;
        }
        history.abort();
        if let Some(recorder) = recorder {
            recorder.abort();
        }
        if let Some(pruner) = pruner {
            pruner.abort();
        }
        let _ = admin.await;
        let _ = probe.await;
        publisher.close();
        Ok(())
    }
}

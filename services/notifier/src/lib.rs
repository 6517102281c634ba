//! notifier: tells the committer and the team what happened to a run, on DingTalk,
//! WeCom, Feishu/Lark, Slack, a generic webhook or email.
//!
//! Per event: remember what the run has said so far ([`runs`]), pick the channels the
//! routes name ([`route`]), write the notice in each channel's language ([`notice`]),
//! scrub secrets ([`scrub`]) and hand it to the channel's queue ([`outbox`]), which keeps
//! the platform's rate limit, retries and remembers what it delivered. The handler's
//! outcome follows the deliveries: all sent → done; a transient failure → retry later
//! (the bus's delays); only permanent failures → give up, which parks the event with
//! the reasons and publishes `notify.failed`. A `notify.failed` event itself is never
//! retried or parked, so a broken channel cannot feed on its own failures.

pub mod channels;
pub mod counters;
pub mod escape;
pub mod http;
pub mod i18n;
pub mod notice;
pub mod outbox;
pub mod ratelimit;
pub mod render;
pub mod route;
pub mod runs;
pub mod scrub;
pub mod seen;
pub mod sign;

use channels::{Channel, ChannelError, SendError};
use counters::{Count, Counters};
use ferry_shared::bus::{Context, StageSpec};
use ferry_shared::config::{FerryConfig, HostFiles};
use ferry_shared::event::Envelope;
use ferry_shared::notify_config::NotifyConfig;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{Disposition, Input, NotifyInput, Received, StageError, StageHandler};
use i18n::Lang;
use notice::Notice;
use outbox::{Delivered, Outbox, Retry};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

pub const SERVICE: &str = NotifyInput::SERVICE;

pub fn spec() -> StageSpec {
    NotifyInput::spec()
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9607,
    prefetch: 16,
    handler_timeout_secs: 120,
    shutdown_grace_secs: 10,
    host_files: HostFiles::Skip,
};

/// Permanent failures remembered, so a retry of the event does not ask again.
const FAILED_MEMORY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot open the delivery journal {path}: {source}; fix notify.state_dir")]
    Journal {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Why an event's notifications are not all delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryFailed {
    /// The channels could not be set up: the events wait in the retry queues.
    #[error("the notifier is not set up: {0}")]
    NotSetUp(String),
    /// Some channels may work on another try (others may have failed for good).
    #[error("{}", transient_reason(.transient, .permanent))]
    Transient {
        transient: Vec<(String, String)>,
        permanent: Vec<(String, String)>,
    },
    /// Every failed channel failed for good.
    #[error("notification not delivered: {}", list(.0))]
    Permanent(Vec<(String, String)>),
}

impl StageError for DeliveryFailed {
    fn disposition(&self) -> Disposition {
        match self {
            DeliveryFailed::NotSetUp(_) | DeliveryFailed::Transient { .. } => Disposition::Retry,
            DeliveryFailed::Permanent(_) => Disposition::GiveUp,
        }
    }
}

fn transient_reason(transient: &[(String, String)], permanent: &[(String, String)]) -> String {
    let why = list(transient);
    match permanent.is_empty() {
        true => why,
        false => format!("{why}; failed for good: {}", list(permanent)),
    }
}

struct Route {
    outbox: Outbox,
    lang: Lang,
}

/// The notifier without the bus: `notify` an event, get what happened per channel.
pub struct Notifier {
    notify: NotifyConfig,
    /// `dashboard.url`: notices link their run's page.
    dashboard: Option<ferry_shared::config::DashboardUrl>,
    channels: BTreeMap<String, Route>,
    runs: runs::Runs,
    scrub: scrub::Scrubber,
    counters: Arc<Counters>,
    /// (event, channel) that failed for good, with the reason.
    failed: Mutex<VecDeque<(Uuid, String, String)>>,
}

/// What became of one event's notifications.
#[derive(Debug, Default)]
pub struct Report {
    pub sent: Vec<String>,
    pub already_sent: Vec<String>,
    /// (channel, reason): worth another try later.
    pub transient: Vec<(String, String)>,
    /// (channel, reason): will not work without a change.
    pub permanent: Vec<(String, String)>,
}

impl Notifier {
    pub fn new(cfg: &FerryConfig) -> Result<Self, NotifierError> {
        let notify = cfg.notify.clone();
        let counters = Arc::new(Counters::default());
        let http = http::Http::new(
            Duration::from_millis(notify.timeout_ms),
            &notify.allow_hosts,
        )?;
        let retry = Retry {
            attempts: notify.attempts.max(1),
            backoff: Duration::from_millis(notify.backoff_ms),
        };
        let mut channels = BTreeMap::new();
        for (name, c) in &notify.channels {
            let channel = Channel::new(name, c, &notify, &http)?;
            let seen = match &notify.state_dir {
                Some(dir) => {
                    let path = dir.join(format!("{name}.delivered"));
                    seen::Seen::with_journal(notify.remember, path.clone())
                        .map_err(|source| NotifierError::Journal { path, source })?
                }
                None => seen::Seen::new(notify.remember),
            };
            let lang = channel.lang;
            channels.insert(
                name.clone(),
                Route {
                    outbox: Outbox::new(channel, seen, retry, counters.clone()),
                    lang,
                },
            );
        }
        Ok(Self {
            scrub: scrub::Scrubber::from_config(cfg),
            dashboard: cfg.dashboard.url.clone(),
            notify,
            channels,
            runs: runs::Runs::default(),
            counters,
            failed: Mutex::new(VecDeque::new()),
        })
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn failed_before(&self, event: Uuid, channel: &str) -> Option<String> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed
            .iter()
            .find(|(e, c, _)| *e == event && c == channel)
            .map(|(_, _, why)| why.clone())
    }

    fn remember_failure(&self, event: Uuid, channel: &str, why: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.len() >= FAILED_MEMORY {
            failed.pop_front();
        }
        failed.push_back((event, channel.to_owned(), why.to_owned()));
    }

    /// Send an event to the channels its routes name and wait (up to
    /// `notify.max_wait_secs`) for the deliveries.
    pub async fn notify(&self, e: &Envelope) -> Report {
        let run = self.runs.observe(e);
        let mut report = Report::default();
        let mut notices: HashMap<Lang, Arc<Notice>> = HashMap::new();
        let mut waiting = Vec::new();
        for target in route::targets(&self.notify, e) {
            let Some(route) = self.channels.get(&target.channel) else {
                continue;
            };
            if let Some(why) = self.failed_before(e.event_id, &target.channel) {
                report.permanent.push((target.channel, why));
                continue;
            }
            let notice = notices
                .entry(route.lang)
                .or_insert_with(|| {
                    let mut n = Notice::build(e, &run, route.lang, &self.notify.cli);
                    if let Some(url) = &self.dashboard {
                        n.link_to(url);
                    }
                    self.scrub.notice(&mut n);
                    Arc::new(n)
                })
                .clone();
            let mentions = match (&run.author, target.mention_author) {
                (Some(author), true) => self.notify.author(author).cloned().into_iter().collect(),
                _ => Vec::new(),
            };
            waiting.push((target.channel, route.outbox.submit(notice, mentions)));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.notify.max_wait_secs);
        for (channel, rx) in waiting {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Ok(Delivered::Sent))) => report.sent.push(channel),
                Ok(Ok(Ok(Delivered::AlreadySent))) => report.already_sent.push(channel),
                Ok(Ok(Err(SendError::Permanent(why)))) => {
                    let why = self.scrub.text(&why);
                    self.remember_failure(e.event_id, &channel, &why);
                    report.permanent.push((channel, why));
                }
                Ok(Ok(Err(SendError::Transient { reason, .. }))) => {
                    report.transient.push((channel, self.scrub.text(&reason)))
                }
                Ok(Err(_)) => report
                    .transient
                    .push((channel, "the channel's queue stopped".into())),
                Err(_) => report.transient.push((
                    channel,
                    format!(
                        "still queued behind the rate limit after {} s (it will be sent; the retry only waits for it)",
                        self.notify.max_wait_secs
                    ),
                )),
            }
        }
        report
    }
}

fn list(items: &[(String, String)]) -> String {
    items
        .iter()
        .map(|(c, why)| format!("channel `{c}`: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub struct Stage {
    notifier: Result<Notifier, String>,
    max_attempts: u32,
}

impl Stage {
    /// A stage whose channels could not be set up still runs: its events wait in the
    /// retry queues (and are finally parked) instead of being lost.
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self::try_new(cfg).unwrap_or_else(|e| {
            tracing::error!("{e}");
            Self {
                notifier: Err(e.to_string()),
                max_attempts: 1,
            }
        })
    }

    pub fn try_new(cfg: Arc<FerryConfig>) -> Result<Self, NotifierError> {
        Ok(Self {
            notifier: Ok(Notifier::new(&cfg)?),
            max_attempts: cfg.broker.max_attempts,
        })
    }

    /// The notifier's counters, to attach to the service's metrics once it is bound.
    pub fn counters(&self) -> Arc<Counters> {
        match &self.notifier {
            Ok(n) => n.counters(),
            Err(_) => Arc::new(Counters::default()),
        }
    }
}

impl StageHandler for Stage {
    type Input = NotifyInput;
    type Error = DeliveryFailed;

    async fn run(
        &self,
        ctx: &Context,
        event: &Received<NotifyInput>,
    ) -> Result<(), DeliveryFailed> {
        let notifier = self
            .notifier
            .as_ref()
            .map_err(|e| DeliveryFailed::NotSetUp(e.clone()))?;
        let report = notifier.notify(event).await;
        let counters = &notifier.counters;
        if let NotifyInput::NotifyFailed(_) = event.input {
            // Best effort: failing here would park it and publish another notify.failed.
            let failed = [report.transient.as_slice(), report.permanent.as_slice()].concat();
            if !failed.is_empty() {
                counters.add(Count::Failed, failed.len() as u64);
                tracing::error!(
                    "cannot report a failed notification either: {}",
                    list(&failed)
                );
            }
            return Ok(());
        }
        if !report.transient.is_empty() {
            if ctx.attempt >= self.max_attempts {
                counters.add(
                    Count::Failed,
                    (report.transient.len() + report.permanent.len()) as u64,
                );
            }
            return Err(DeliveryFailed::Transient {
                transient: report.transient,
                permanent: report.permanent,
            });
        }
        if !report.permanent.is_empty() {
            counters.add(Count::Failed, report.permanent.len() as u64);
            return Err(DeliveryFailed::Permanent(report.permanent));
        }
        Ok(())
    }
}

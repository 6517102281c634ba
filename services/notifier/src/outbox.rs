//! One queue per channel, drained by one task: the channel's rate limit is kept here,
//! and nothing waiting is dropped. When more notices wait than the window still
//! allows, they are merged, as evenly as the remaining sends permit, into fewer
//! messages. Each send is tried `notify.attempts` times (5xx, 429, timeouts) with a
//! doubling backoff. Delivered event ids are remembered, so a repeat is answered
//! "already sent" instead of being sent again, also when it arrives while the first
//! copy still waits in the queue.

use crate::channels::{Channel, SendError};
use crate::counters::{Count, Counters};
use crate::notice::Notice;
use crate::ratelimit::Window;
use crate::seen::Seen;
use ferry_shared::notify_config::AuthorConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// Delivered before: not sent again.
    AlreadySent,
}

pub type Reply = Result<Delivered, SendError>;

pub struct Job {
    pub notice: Arc<Notice>,
    pub mentions: Vec<AuthorConfig>,
    pub reply: oneshot::Sender<Reply>,
}

struct Pending {
    notice: Arc<Notice>,
    mentions: Vec<AuthorConfig>,
    waiters: Vec<oneshot::Sender<Reply>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
}

/// The sending side of a channel's queue; the worker starts with the first job (so a
/// notifier can be built outside a runtime).
pub struct Outbox {
    tx: mpsc::UnboundedSender<Job>,
    worker: Mutex<Option<Worker>>,
}

impl Outbox {
    pub fn new(channel: Channel, seen: Seen, retry: Retry, counters: Arc<Counters>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker {
            window: Window::new(channel.rate_limit),
            channel,
            seen,
            retry,
            counters,
            rx,
            pending: Vec::new(),
        };
        Self {
            tx,
            worker: Mutex::new(Some(worker)),
        }
    }

    /// Queue a notice; the answer comes once it is delivered (or finally failed).
    pub fn submit(
        &self,
        notice: Arc<Notice>,
        mentions: Vec<AuthorConfig>,
    ) -> oneshot::Receiver<Reply> {
        if let Some(worker) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            tokio::spawn(worker.run());
        }
        let (reply, rx) = oneshot::channel();
        // The worker lives as long as the sender; a closed queue drops the reply,
        // which the caller reads as a transient failure.
        let _ = self.tx.send(Job {
            notice,
            mentions,
            reply,
        });
        rx
    }
}

struct Worker {
    channel: Channel,
    window: Window,
    seen: Seen,
    retry: Retry,
    counters: Arc<Counters>,
    rx: mpsc::UnboundedReceiver<Job>,
    pending: Vec<Pending>,
}

impl Worker {
    async fn run(mut self) {
        let mut open = true;
        loop {
            if self.pending.is_empty() {
                if !open {
                    return;
                }
                match self.rx.recv().await {
                    Some(job) => self.accept(job),
                    None => return,
                }
            }
            while let Ok(job) = self.rx.try_recv() {
                self.accept(job);
            }
            if self.pending.is_empty() {
                continue;
            }
            if let Some(at) = self.window.next_free(Instant::now()) {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    job = self.rx.recv(), if open => match job {
                        Some(job) => self.accept(job),
                        None => open = false,
                    },
                }
                continue;
            }
            let batch = self.take_batch();
            self.deliver(batch).await;
        }
    }

    fn accept(&mut self, job: Job) {
        let id = job.notice.event_id;
        if self.seen.contains(&id) {
            self.counters.add(Count::Duplicate, 1);
            let _ = job.reply.send(Ok(Delivered::AlreadySent));
        } else if let Some(p) = self.pending.iter_mut().find(|p| p.notice.event_id == id) {
            self.counters.add(Count::Duplicate, 1);
            p.waiters.push(job.reply);
        } else {
            self.pending.push(Pending {
                notice: job.notice,
                mentions: job.mentions,
                waiters: vec![job.reply],
            });
        }
    }

    /// The oldest waiting notices, as many as needed for everything waiting to fit in
    /// the sends the window still allows, and as fit in one message.
    fn take_batch(&mut self) -> Vec<Pending> {
        let remaining = self.window.remaining(Instant::now()).max(1);
        let want = self.pending.len().div_ceil(remaining).max(1);
        let mut n = 1;
        while n < want && n < self.pending.len() {
            let candidate: Vec<&Notice> = self.pending[..=n]
                .iter()
                .map(|p| p.notice.as_ref())
                .collect();
            if !self.channel.fits(&candidate) {
                break;
            }
            n += 1;
        }
        self.pending.drain(..n).collect()
    }

    async fn deliver(&mut self, batch: Vec<Pending>) {
        let notices: Vec<&Notice> = batch.iter().map(|p| p.notice.as_ref()).collect();
        let mut mentions: Vec<AuthorConfig> = Vec::new();
        for p in &batch {
            mentions.extend(p.mentions.iter().cloned());
        }
        let mut attempt = 1;
        let result = loop {
            if let Some(at) = self.window.next_free(Instant::now()) {
                tokio::time::sleep_until(at).await;
            }
            self.window.record(Instant::now());
            match self.channel.send(&notices, &mentions).await {
                Ok(()) => break Ok(()),
                Err(SendError::Transient {
                    reason,
                    retry_after,
                }) if attempt < self.retry.attempts => {
                    let backoff = self.retry.backoff * 2u32.pow(attempt - 1);
                    let wait = retry_after.map_or(backoff, |r| r.max(backoff));
                    tracing::warn!(channel = %self.channel.name, attempt, ?wait, "{reason}; trying again");
                    self.counters.add(Count::Retried, 1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        let ids: Vec<Uuid> = batch.iter().map(|p| p.notice.event_id).collect();
        match &result {
            Ok(()) => {
                for id in &ids {
                    self.seen.insert(*id);
                }
                self.counters.add(Count::Sent, 1);
                self.counters.add(Count::Merged, ids.len() as u64 - 1);
                tracing::info!(channel = %self.channel.name, notices = ids.len(), "sent");
            }
            Err(e) => {
                tracing::warn!(channel = %self.channel.name, notices = ids.len(), "not sent: {}", e.reason())
            }
        }
        for p in batch {
            for w in p.waiters {
                let _ = w.send(result.clone().map(|()| Delivered::Sent));
            }
        }
    }
}

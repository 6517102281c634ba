//! A lock across every replica, held in RabbitMQ itself: an exclusive queue can be
//! declared by one connection at a time, and disappears when that connection closes,
//! so a holder that crashes releases the lock without anyone cleaning up.

use super::{BusError, connect};
use crate::config::BrokerConfig;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use std::time::{Duration, Instant};

/// Held while alive; dropping it closes the connection, which releases the lock.
pub struct Lock {
    conn: lapin::Connection,
    queue: String,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("queue", &self.queue).finish()
    }
}

/// How long [`Lock::held`] waits for the broker's answer: a node cut off from its
/// client answers nothing, and its silence must count as a lost lock well before the
/// cluster gives the lock to someone else (a node is declared down after
/// `net_ticktime`, 60 s by default, 10 s in Ferry's tests).
const HELD_TIMEOUT: Duration = Duration::from_secs(2);

impl Lock {
    /// Wait up to `wait` for the lock named `name` (e.g. `deploy.shop.production`).
    /// `Ok(None)` when someone else held it the whole time.
    pub async fn acquire(
        cfg: &BrokerConfig,
        name: &str,
        wait: Duration,
    ) -> Result<Option<Lock>, BusError> {
        Self::connect(cfg, name).await?.acquire(wait).await
    }

    /// The connection that will hold the lock `name`, not taking it yet: a caller can
    /// connect while it does something else that must come before taking the lock.
    pub async fn connect(cfg: &BrokerConfig, name: &str) -> Result<Contender, BusError> {
        let conn = connect::connect(cfg, &format!("lock {name}")).await?;
        Ok(Contender {
            conn,
            queue: format!("{}.lock.{name}", cfg.namespace),
        })
    }
}

impl Lock {
    /// Whether this process still holds the lock: its connection is open and the
    /// broker still has the exclusive queue as this connection's (a passive declare,
    /// which only the owner's connection may make). Asked before each step that two
    /// holders must never both take (a host's switch): a lock lost with its connection
    /// (the node it was on crashed or was cut off, the connection was closed) may be
    /// taken by another updater at any moment after.
    pub async fn held(&self) -> bool {
        let check = async {
            if !self.conn.status().connected() {
                return false;
            }
            let Ok(channel) = self.conn.create_channel().await else {
                return false;
            };
            let options = QueueDeclareOptions {
                passive: true,
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            let ok = channel
                .queue_declare(self.queue.as_str().into(), options, FieldTable::default())
                .await
                .is_ok();
            let _ = channel.close(200, "lock checked".into()).await;
            ok
        };
        tokio::time::timeout(HELD_TIMEOUT, check)
            .await
            .unwrap_or(false)
    }
}

/// A connection ready to take a lock.
pub struct Contender {
    conn: lapin::Connection,
    queue: String,
}

impl Contender {
    /// Wait up to `wait` for the lock; `Ok(None)` when someone else held it the whole
    /// time.
    pub async fn acquire(self, wait: Duration) -> Result<Option<Lock>, BusError> {
        let Contender { conn, queue } = self;
        let deadline = Instant::now() + wait;
        // One connection for the whole wait: a refused declaration (RESOURCE_LOCKED)
        // closes only the channel, so each attempt needs just a new channel.
        loop {
            let channel = conn
                .create_channel()
                .await
                .map_err(|source| BusError::Channel {
                    step: "channel.open",
                    source,
                })?;
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            if channel
                .queue_declare(queue.as_str().into(), options, FieldTable::default())
                .await
                .is_ok()
            {
                let _ = channel.close(200, "lock taken".into()).await;
                return Ok(Some(Lock { conn, queue }));
            }
            if Instant::now() >= deadline {
                let _ = conn.close(200, "lock busy".into()).await;
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

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
    _conn: lapin::Connection,
}

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
                return Ok(Some(Lock { _conn: conn }));
            }
            if Instant::now() >= deadline {
                let _ = conn.close(200, "lock busy".into()).await;
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

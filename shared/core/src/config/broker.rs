//! `[broker]`: the RabbitMQ every service connects to, and how handlers are retried.

use super::problem::{Problem, Report};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// `amqp://user:password@host:port/vhost` (or `amqps://`).
    pub url: Secret<String>,
    /// The other nodes of a RabbitMQ cluster, `host:port` each: a connection goes to
    /// any of them (the URL's own included) with the URL's user, vhost and parameters.
    pub addresses: Vec<String>,
    /// Prefix of every exchange and queue, so several installations (or tests) can
    /// share one broker.
    pub namespace: String,
    pub heartbeat_secs: u16,
    pub connect_timeout_ms: u64,
    /// Upper bound for one publish, from sending to the broker's confirm.
    pub publish_timeout_ms: u64,
    /// Longest wait between two reconnection attempts.
    pub reconnect_max_delay_ms: u64,
    /// Publishing channels (each on its own connection) shared by a process.
    pub publisher_channels: usize,
    /// Delay before each retry of a handler that asked to retry later; the last one
    /// repeats if `max_attempts` asks for more retries than there are delays.
    pub retry_delays_ms: Vec<u64>,
    /// How many times a handler may run for one message (first try included) before
    /// the message is parked and the run fails.
    pub max_attempts: u32,
    /// How many times a message may come back without an outcome (the consumer died
    /// or lost its channel mid-handler) before it is parked as poison.
    pub max_redeliveries: u32,
    /// The broker's `consumer_timeout` (RabbitMQ default 30 min). Handlers must finish
    /// well before it: see "Long work" in the README.
    pub consumer_timeout_secs: u64,
    /// How long the run history (a RabbitMQ stream of every event, read by
    /// `ferry runs`) keeps events, in RabbitMQ's `x-max-age` form: `7D`, `12h`, `30m`.
    pub history_max_age: String,
    /// Size bound of the run history stream.
    pub history_max_bytes: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            addresses: Vec::new(),
            namespace: "ferry".into(),
            heartbeat_secs: 10,
            connect_timeout_ms: 5_000,
            publish_timeout_ms: 5_000,
            reconnect_max_delay_ms: 2_000,
            publisher_channels: 2,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000],
            max_attempts: 5,
            max_redeliveries: 5,
            consumer_timeout_secs: 1_800,
            history_max_age: "7D".into(),
            history_max_bytes: 1_000_000_000,
        }
    }
}

impl BrokerConfig {
    pub(super) fn check(&self, out: &mut Vec<Problem>) {
        if let Err(e) = self.url.expose().parse::<lapin::uri::AMQPUri>() {
            out.bad(
                "broker.url",
                format!("not an AMQP URL ({e}); expected amqp://user:password@host:5672/%2f"),
            );
        }
        for (i, a) in self.addresses.iter().enumerate() {
            if let Err(why) = node_address(a) {
                out.bad(format!("broker.addresses[{i}]"), why);
            }
        }
        let namespace_ok =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c);
        if self.namespace.is_empty() || !self.namespace.chars().all(namespace_ok) {
            out.bad(
                "broker.namespace",
                format!(
                    "`{}` must be non-empty, lowercase letters, digits, `-` or `_`",
                    self.namespace
                ),
            );
        }
        for (key, value) in [
            ("broker.connect_timeout_ms", self.connect_timeout_ms),
            ("broker.publish_timeout_ms", self.publish_timeout_ms),
            ("broker.reconnect_max_delay_ms", self.reconnect_max_delay_ms),
            ("broker.consumer_timeout_secs", self.consumer_timeout_secs),
            ("broker.max_attempts", u64::from(self.max_attempts)),
            ("broker.publisher_channels", self.publisher_channels as u64),
        ] {
            if value == 0 {
                out.bad(key, "must be greater than 0");
            }
        }
        if self.retry_delays_ms.is_empty() || self.retry_delays_ms.contains(&0) {
            out.bad(
                "broker.retry_delays_ms",
                "needs at least one delay, each greater than 0",
            );
        }
    }
}

/// A cluster node's `host:port` (an IPv6 address in brackets: `[fd00::1]:5672`).
pub fn node_address(a: &str) -> Result<(String, u16), String> {
    let bad = || format!("`{a}` is not host:port (e.g. rabbit2.internal:5672)");
    let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = |c: char| c.is_ascii_alphanumeric() || "-.:_".contains(c);
    if host.is_empty() || port == 0 || !host.chars().all(host_ok) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

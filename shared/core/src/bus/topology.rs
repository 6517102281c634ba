//! What Ferry declares on RabbitMQ, as data: declared by the services at start-up and
//! exported as `deploy/rabbitmq/definitions.json` (a test keeps the two equal).
//!
//! ```text
//! <ns>.events (topic) --binding--> <ns>.<service>            (quorum; the stage's input)
//! <ns>.<service> --retry-later--> <ns>.<service>.retry.<d>ms (quorum, TTL d, dead-letters back)
//! <ns>.<service> --give up / attempts exhausted / poison--> <ns>.<service>.parked
//! ```
//! Retry and parking messages go through the stage's own direct exchange
//! `<ns>.<service>.direct`, addressed by queue name, never through the default exchange:
//! writing to the default exchange would let a broker user put a message into any
//! queue (e.g. the updater's), so no Ferry user is given that right (see `bus::users`).

use super::BusError;
use crate::config::BrokerConfig;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use serde_json::{Value, json};

/// What a consuming service declares: its queue and the routing patterns it takes.
/// Derived from the stage's input declaration (`stage::Input::spec`).
#[derive(Clone, Debug)]
pub struct StageSpec {
    /// The binary's name, e.g. `builder`: names the queue.
    pub service: &'static str,
    /// The stage in routing keys, e.g. `build` for `build.failed`.
    pub stage: crate::stage::StageName,
    /// Topic patterns, e.g. `source.changed` or `deploy.succeeded.*`.
    pub bindings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueueDef {
    pub name: String,
    pub arguments: Vec<(&'static str, Value)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub exchange: String,
    pub queues: Vec<QueueDef>,
    /// (queue, routing pattern)
    pub bindings: Vec<(String, String)>,
    /// The stage's direct exchange with its (queue, queue name) bindings, if any.
    pub direct: Option<(String, Vec<(String, String)>)>,
}

pub fn exchange_name(namespace: &str) -> String {
    format!("{namespace}.events")
}

pub fn queue_name(namespace: &str, service: &str) -> String {
    format!("{namespace}.{service}")
}

/// The stage's own direct exchange: its retries, parking and dead-lettering go through
/// it, each bound by queue name. Only the stage's broker user may write to it.
pub fn direct_exchange_name(namespace: &str, service: &str) -> String {
    format!("{namespace}.{service}.direct")
}

/// Where approval holds and "latest request" registers are published: the updater's
/// direct exchange, since only the updater places holds and offers deploy requests, so
/// no broker user needs the default exchange (which reaches every queue).
pub fn registers_exchange_name(namespace: &str) -> String {
    direct_exchange_name(namespace, "rancher-updater")
}

/// Declare the registers' exchange (idempotent) and bind `queue` to it by its name.
pub(crate) async fn bind_register(
    channel: &Channel,
    namespace: &str,
    queue: &str,
) -> Result<String, BusError> {
    let exchange = registers_exchange_name(namespace);
    declare_exchange_of_kind(channel, &exchange, ExchangeKind::Direct).await?;
    channel
        .queue_bind(
            queue.into(),
            exchange.as_str().into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| BusError::Declare {
            name: format!("binding {queue} <- {exchange}"),
            source,
        })?;
    Ok(exchange)
}

pub fn history_queue_name(namespace: &str) -> String {
    format!("{namespace}.history")
}

pub fn parked_queue_name(namespace: &str, service: &str) -> String {
    format!("{namespace}.{service}.parked")
}

/// Named by its delay so that changing `retry_delays_ms` adds queues instead of
/// clashing with existing ones (RabbitMQ refuses to redeclare with other arguments).
pub fn retry_queue_name(namespace: &str, service: &str, delay_ms: u64) -> String {
    format!("{namespace}.{service}.retry.{delay_ms}ms")
}

/// Quorum queues that dead-letter at-least-once (RabbitMQ ≥ 3.10): a message moving to
/// the parking lot or back from a retry queue is never dropped on the way.
fn quorum_dead_lettering_to(direct: &str, target: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("x-queue-type", json!("quorum")),
        ("x-dead-letter-exchange", json!(direct)),
        ("x-dead-letter-routing-key", json!(target)),
        ("x-dead-letter-strategy", json!("at-least-once")),
        ("x-overflow", json!("reject-publish")),
    ]
}

impl Topology {
    pub fn for_stage(cfg: &BrokerConfig, spec: &StageSpec) -> Self {
        let ns = &cfg.namespace;
        let main = queue_name(ns, spec.service);
        let parked = parked_queue_name(ns, spec.service);
        let direct = direct_exchange_name(ns, spec.service);
        let mut main_args = quorum_dead_lettering_to(&direct, &parked);
        // Backstop for poison that kills the consumer before it can park the message
        // itself (the consumer parks at `max_redeliveries`).
        main_args.push(("x-delivery-limit", json!(cfg.max_redeliveries + 2)));
        let mut queues = vec![QueueDef {
            name: main.clone(),
            arguments: main_args,
        }];
        let mut delays = cfg.retry_delays_ms.clone();
        delays.sort_unstable();
        delays.dedup();
        for delay in delays {
            let mut arguments = quorum_dead_lettering_to(&direct, &main);
            arguments.push(("x-message-ttl", json!(delay)));
            queues.push(QueueDef {
                name: retry_queue_name(ns, spec.service, delay),
                arguments,
            });
        }
        queues.push(QueueDef {
            name: parked,
            arguments: vec![("x-queue-type", json!("quorum"))],
        });
        // Every queue of the stage is reachable on its direct exchange by its name.
        let direct_bindings = queues
            .iter()
            .map(|q| (q.name.clone(), q.name.clone()))
            .collect();
        Self {
            exchange: exchange_name(ns),
            queues,
            bindings: spec
                .bindings
                .iter()
                .map(|b| (main.clone(), b.clone()))
                .collect(),
            direct: Some((direct, direct_bindings)),
        }
    }

    /// The run history: a stream bound to every event, read (never consumed) by the
    /// operator API for `ferry runs`. RabbitMQ trims it by age and size.
    pub fn history(cfg: &BrokerConfig) -> Self {
        let name = history_queue_name(&cfg.namespace);
        Self {
            exchange: exchange_name(&cfg.namespace),
            queues: vec![QueueDef {
                name: name.clone(),
                arguments: vec![
                    ("x-queue-type", json!("stream")),
                    ("x-max-age", json!(cfg.history_max_age)),
                    ("x-max-length-bytes", json!(cfg.history_max_bytes)),
                    ("x-stream-max-segment-size-bytes", json!(50_000_000)),
                ],
            }],
            bindings: vec![(name, "#".to_owned())],
            direct: None,
        }
    }

    /// Idempotent: declaring what exists with the same arguments is a no-op.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        declare_exchange(channel, &self.exchange).await?;
        // Before the queues: their dead-letter exchange must exist when they use it.
        if let Some((direct, _)) = &self.direct {
            declare_exchange_of_kind(channel, direct, ExchangeKind::Direct).await?;
        }
        for q in &self.queues {
            channel
                .queue_declare(
                    q.name.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    field_table(&q.arguments),
                )
                .await
                .map_err(|source| BusError::Declare {
                    name: q.name.clone(),
                    source,
                })?;
        }
        for (queue, key) in &self.bindings {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BusError::Declare {
                    name: format!("binding {queue} <- {key}"),
                    source,
                })?;
        }
        for (exchange, queue, key) in self.direct_bindings() {
            channel
                .queue_bind(
                    queue.into(),
                    exchange.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BusError::Declare {
                    name: format!("binding {queue} <- {exchange}"),
                    source,
                })?;
        }
        Ok(())
    }

    /// (direct exchange, queue, key) for each binding on the stage's direct exchange.
    fn direct_bindings(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.direct.iter().flat_map(|(exchange, bindings)| {
            bindings
                .iter()
                .map(move |(q, k)| (exchange.as_str(), q.as_str(), k.as_str()))
        })
    }
}

pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    declare_exchange_of_kind(channel, exchange, ExchangeKind::Topic).await
}

pub async fn declare_exchange_of_kind(
    channel: &Channel,
    exchange: &str,
    kind: ExchangeKind,
) -> Result<(), BusError> {
    channel
        .exchange_declare(
            exchange.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|source| BusError::Declare {
            name: exchange.to_owned(),
            source,
        })
}

fn field_table(args: &[(&'static str, Value)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        let value = match v {
            Value::String(s) => AMQPValue::LongString(s.as_str().into()),
            Value::Number(n) => AMQPValue::LongLongInt(n.as_i64().unwrap_or_default()),
            Value::Bool(b) => AMQPValue::Boolean(*b),
            other => AMQPValue::LongString(other.to_string().as_str().into()),
        };
        t.insert((*k).into(), value);
    }
    t
}

/// RabbitMQ definitions (the management plugin's import format) for the given stages.
pub fn definitions(cfg: &BrokerConfig, stages: &[StageSpec]) -> Value {
    let vhost = cfg
        .url
        .expose()
        .parse::<lapin::uri::AMQPUri>()
        .map(|u| u.vhost)
        .unwrap_or_else(|_| "/".into());
    let mut topologies: Vec<Topology> =
        stages.iter().map(|s| Topology::for_stage(cfg, s)).collect();
    topologies.push(Topology::history(cfg));
    let queues: Vec<Value> = topologies
        .iter()
        .flat_map(|t| &t.queues)
        .map(|q| {
            let args: serde_json::Map<String, Value> = q
                .arguments
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            json!({"name": q.name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": args})
        })
        .collect();
    let bindings: Vec<Value> = topologies
        .iter()
        .flat_map(|t| {
            let topic = t
                .bindings
                .iter()
                .map(|(q, k)| (t.exchange.as_str(), q.as_str(), k.as_str()));
            topic.chain(t.direct_bindings())
        })
        .map(|(exchange, queue, key)| {
            json!({"source": exchange, "vhost": vhost, "destination": queue,
                   "destination_type": "queue", "routing_key": key, "arguments": {}})
        })
        .collect();
    let exchange = |name: &str, kind: &str| {
        json!({"name": name, "vhost": vhost, "type": kind,
               "durable": true, "auto_delete": false, "internal": false, "arguments": {}})
    };
    let mut exchanges = vec![exchange(&exchange_name(&cfg.namespace), "topic")];
    exchanges.extend(
        topologies
            .iter()
            .filter_map(|t| t.direct.as_ref())
            .map(|(name, _)| exchange(name, "direct")),
    );
    json!({
        "policies": [leader_policy(&cfg.namespace, &vhost)],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    })
}

/// Spreads the leaders of the namespace's quorum queues (and the history stream) over a
/// cluster's nodes. Without it a leader lives where the declaring client was connected, and
/// every service declares its queues: one node would lead most of them and take most of the
/// load. Only a policy can say this (not the queue arguments services declare with): a
/// changed argument would make RabbitMQ refuse the existing queues. Placement is decided
/// when a queue is declared; after a node's restart, `rabbitmq-queues rebalance quorum`
/// spreads the leaders again (README, "RabbitMQ for production").
fn leader_policy(namespace: &str, vhost: &str) -> Value {
    json!({
        "vhost": vhost,
        "name": format!("{namespace}-leaders"),
        "pattern": format!("^{}\\.", regex_escape(namespace)),
        "apply-to": "queues",
        "priority": 0,
        "definition": {"queue-leader-locator": "balanced"},
    })
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = !c.is_ascii_alphanumeric() && c != '_' && c != '-';
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_spread_the_namespaces_quorum_leaders_by_policy() {
        let cfg = BrokerConfig {
            namespace: "ferry.test-1".into(),
            ..BrokerConfig::default()
        };
        let defs = definitions(&cfg, &crate::pipeline::stages());
        let policies = defs["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 1);
        let p = &policies[0];
        assert_eq!(p["definition"]["queue-leader-locator"], "balanced");
        assert_eq!(p["apply-to"], "queues");
        // The namespace's dot is literal: `ferryXtest-1.builder` is another namespace.
        assert_eq!(p["pattern"], r"^ferry\.test-1\.");
    }
}

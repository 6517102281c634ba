use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(
        "cannot connect to RabbitMQ at {url}: {source}; check broker.url and that the broker is running"
    )]
    Connect { url: String, source: lapin::Error },
    #[error(
        "connecting to RabbitMQ at {url} timed out after {after:?}; check broker.url and the network"
    )]
    ConnectTimeout { url: String, after: Duration },
    /// The parser's reason is left out: it may quote the URL, password included.
    #[error("broker.url `{url}` is not an AMQP URL; expected amqp://user:password@host:5672/%2f")]
    BadUrl { url: String },
    #[error("RabbitMQ refused `{step}`: {source}")]
    Channel {
        step: &'static str,
        source: lapin::Error,
    },
    #[error(
        "RabbitMQ refused to declare `{name}`: {source}; if it exists with other arguments \
         (e.g. after a config change), delete it or restore the old setting"
    )]
    Declare { name: String, source: lapin::Error },
    #[error(
        "no queue is bound for routing key `{routing_key}` on exchange `{exchange}`: the event would be lost, so it was not accepted; start the consuming service or check its bindings"
    )]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error(
        "RabbitMQ did not accept the message for `{routing_key}` (negative confirm); it was not stored, publish again later"
    )]
    Nacked { routing_key: String },
    #[error(
        "publishing `{routing_key}` got no confirm within {after:?}; the broker may be down or overloaded"
    )]
    PublishTimeout {
        routing_key: String,
        after: Duration,
    },
    #[error("no publishing channel to RabbitMQ is available: {0}")]
    Pool(String),
    #[error(
        "RabbitMQ did not answer `{step}` within {after:?}; the broker may be recovering from a lost node, try again"
    )]
    Stalled { step: &'static str, after: Duration },
}

impl BusError {
    /// A declare RabbitMQ refused because the topology conflicts with what exists (other
    /// arguments) or the user may not touch it: the same declare fails until someone
    /// changes the config or the broker. Any other refusal (a queue whose node is still
    /// recovering answers NOT_FOUND) can pass.
    pub fn is_topology_conflict(&self) -> bool {
        use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
        match self {
            BusError::Declare { source, .. } => matches!(
                source.kind(),
                lapin::ErrorKind::ProtocolError(e) if matches!(
                    e.kind(),
                    AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)
                )
            ),
            _ => false,
        }
    }

    /// Whether trying again later can help (the broker was away or still recovering), as
    /// opposed to a problem that repeats until someone changes the topology or the config.
    pub fn is_transient(&self) -> bool {
        match self {
            BusError::Unroutable { .. } => false,
            BusError::Declare { .. } => !self.is_topology_conflict(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};

    fn refused(kind: AMQPSoftError, message: &str) -> BusError {
        BusError::Declare {
            name: "ferry.history".into(),
            source: lapin::ErrorKind::ProtocolError(AMQPError::new(
                AMQPErrorKind::Soft(kind),
                message.into(),
            ))
            .into(),
        }
    }

    #[test]
    fn a_stream_whose_node_is_recovering_is_no_conflict_but_other_arguments_are() {
        // What RabbitMQ answered a hook-receiver that came up before it had recovered.
        let recovering = refused(
            AMQPSoftError::NOTFOUND,
            "NOT_FOUND - home node 'rabbit@rabbitmq' of durable queue 'ferry.history' in vhost '/' is down or inaccessible",
        );
        assert!(!recovering.is_topology_conflict() && recovering.is_transient());
        let changed = refused(
            AMQPSoftError::PRECONDITIONFAILED,
            "PRECONDITION_FAILED - inequivalent arg 'x-max-age'",
        );
        assert!(changed.is_topology_conflict() && !changed.is_transient());
    }
}

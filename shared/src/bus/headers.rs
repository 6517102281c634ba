//! Message headers the bus reads and writes.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

/// Which run of the handler this delivery is (1 for the first), carried across retries.
pub const ATTEMPT: &str = "x-ferry-attempt";
/// Why the previous attempt asked to retry.
pub const LAST_ERROR: &str = "x-ferry-last-error";
/// Why the message was parked.
pub const PARKED_REASON: &str = "x-ferry-parked-reason";
pub const PARKED_AT: &str = "x-ferry-parked-at";
pub const PARKED_BY: &str = "x-ferry-service";
pub const ORIGINAL_ROUTING_KEY: &str = "x-ferry-original-routing-key";
/// Set by quorum queues on redelivery: how many times the message was returned.
pub const DELIVERY_COUNT: &str = "x-delivery-count";

pub fn get_u64(props: &BasicProperties, key: &str) -> Option<u64> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

pub fn get_str(props: &BasicProperties, key: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The original properties with the given headers set (others kept), minus the
/// broker's own bookkeeping headers, which must not travel to another queue.
pub fn with_headers(props: &BasicProperties, set: &[(&str, AMQPValue)]) -> BasicProperties {
    let mut table = FieldTable::default();
    if let Some(h) = props.headers() {
        for (k, v) in h.inner() {
            if !k.as_str().starts_with("x-death")
                && k.as_str() != DELIVERY_COUNT
                && !k.as_str().starts_with("x-first-death")
                && !k.as_str().starts_with("x-last-death")
            {
                table.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in set {
        table.insert((*k).into(), v.clone());
    }
    props.clone().with_headers(table)
}

pub fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

pub fn number(n: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX))
}

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

/// The queues RabbitMQ says the message was dead-lettered from (its `x-death` list).
/// A publisher can add entries of its own, but cannot remove the ones the broker adds.
pub fn death_queues(props: &BasicProperties) -> Vec<String> {
    let Some(AMQPValue::FieldArray(deaths)) = props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-death"))
    else {
        return Vec::new();
    };
    deaths
        .as_slice()
        .iter()
        .map(|d| match d {
            AMQPValue::FieldTable(t) => match t.inner().get("queue") {
                Some(AMQPValue::LongString(q)) => {
                    String::from_utf8_lossy(q.as_bytes()).into_owned()
                }
                Some(AMQPValue::ShortString(q)) => q.as_str().to_owned(),
                // An entry without a queue name cannot be an approval hold's.
                _ => String::new(),
            },
            _ => String::new(),
        })
        .collect()
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

/// The most of a text header's value that travels. A content header must fit in one
/// AMQP frame (`connect::FRAME_MAX`), and an error message can be a whole build log:
/// the event body keeps the full text, the header its start.
pub const MAX_TEXT: usize = 4096;

pub fn text(s: &str) -> AMQPValue {
    if s.len() <= MAX_TEXT {
        return AMQPValue::LongString(s.into());
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    AMQPValue::LongString(format!("{}… (truncated, {} bytes)", &s[..end], s.len()).into())
}

pub fn number(n: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_char_boundary_and_say_so() {
        let AMQPValue::LongString(short) = text("registry answered 503") else {
            panic!()
        };
        assert_eq!(short.as_bytes(), b"registry answered 503");
        let long = "é".repeat(MAX_TEXT); // two bytes each: the cut falls inside one
        let AMQPValue::LongString(cut) = text(&long) else {
            panic!()
        };
        let cut = String::from_utf8(cut.as_bytes().to_vec()).expect("valid UTF-8");
        assert!(cut.len() < MAX_TEXT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("… (truncated, {} bytes)", long.len())));
    }
}

//! Collections and their filters (api-spec "Filtering"): `field=value` and
//! `field_<modifier>=value`, a `limit` (100 by default), and the collection envelope.

use super::state::Sim;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const MODIFIERS: &[&str] = &[
    "eq", "ne", "lt", "lte", "gt", "gte", "prefix", "like", "notlike", "null", "notnull",
];

/// Query parameters that are not filters.
const NOT_FILTERS: &[&str] = &[
    "limit", "marker", "sort", "order", "reverse", "include", "action", "_",
];

pub(super) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (field, modifier, value) of every filter in the query.
fn filters(params: &[(String, String)]) -> Vec<(String, String, String)> {
    params
        .iter()
        .filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str()))
        .map(|(k, v)| match k.rsplit_once('_') {
            Some((field, m)) if MODIFIERS.contains(&m) && !field.is_empty() => {
                (field.to_owned(), m.to_owned(), v.clone())
            }
            _ => (k.clone(), "eq".to_owned(), v.clone()),
        })
        .collect()
}

/// SQL `like`: `%` any run, `_` one character, `\` escapes.
fn like(pattern: &[char], s: &[char]) -> bool {
    match pattern.first() {
        None => s.is_empty(),
        Some('%') => (0..=s.len()).any(|n| like(&pattern[1..], &s[n..])),
        Some('_') => !s.is_empty() && like(&pattern[1..], &s[1..]),
        Some('\\') if pattern.len() > 1 => {
            s.first() == Some(&pattern[1]) && like(&pattern[2..], &s[1..])
        }
        Some(c) => s.first() == Some(c) && like(&pattern[1..], &s[1..]),
    }
}

/// Does the resource pass the filter? Filters on fields the resource does not have, or
/// that are not plain values, are ignored (as filters a schema does not list are).
fn passes(resource: &Value, (field, modifier, value): &(String, String, String)) -> bool {
    let Some(actual) = resource.get(field) else {
        return true;
    };
    let actual = match actual {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => return true,
    };
    let order = |a: &str| match (a.parse::<f64>(), value.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(value.as_str())),
    };
    use std::cmp::Ordering::*;
    match (modifier.as_str(), actual.as_deref()) {
        ("null", a) => a.is_none(),
        ("notnull", a) => a.is_some(),
        ("ne", a) => a != Some(value.as_str()),
        ("notlike", None) => true,
        (_, None) => false,
        ("eq", Some(a)) => a == value,
        ("lt", Some(a)) => order(a) == Some(Less),
        ("lte", Some(a)) => matches!(order(a), Some(Less | Equal)),
        ("gt", Some(a)) => order(a) == Some(Greater),
        ("gte", Some(a)) => matches!(order(a), Some(Greater | Equal)),
        ("prefix", Some(a)) => a.starts_with(value.as_str()),
        ("like", Some(a)) => like(
            &value.chars().collect::<Vec<_>>(),
            &a.chars().collect::<Vec<_>>(),
        ),
        ("notlike", Some(a)) => !like(
            &value.chars().collect::<Vec<_>>(),
            &a.chars().collect::<Vec<_>>(),
        ),
        _ => true,
    }
}

pub(super) fn collection(
    sim: &Sim,
    resource_type: &str,
    path: &str,
    query: Option<&str>,
    items: Vec<Value>,
) -> Response {
    let params = parse_query(query);
    let filters = filters(&params);
    let mut data: Vec<Value> = items
        .into_iter()
        .filter(|r| filters.iter().all(|f| passes(r, f)))
        .collect();
    let limit = params
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l.min(1000) as usize)
        .unwrap_or(100);
    let partial = data.len() > limit;
    data.truncate(limit);
    let mut shown = Map::new();
    for (field, modifier, value) in &filters {
        if let Value::Array(a) = shown.entry(field.clone()).or_insert_with(|| json!([])) {
            a.push(json!({ "modifier": modifier, "value": value }));
        }
    }
    let self_url = match query {
        Some(q) if !q.is_empty() => format!("{}{path}?{q}", sim.base),
        _ => format!("{}{path}", sim.base),
    };
    axum::Json(json!({
        "type": "collection", "resourceType": resource_type,
        "links": { "self": self_url }, "createTypes": {}, "actions": {},
        "data": data, "sortLinks": {},
        "pagination": { "first": null, "previous": null, "next": null, "limit": limit, "total": null, "partial": partial },
        "sort": null, "filters": shown,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_api_spec() {
        let q = parse_query(Some(
            "name=web&stackId_ne=1st2&removed_null=%3Cnil%3E&limit=5",
        ));
        let f = filters(&q);
        assert_eq!(
            f,
            [
                ("name".into(), "eq".into(), "web".into()),
                ("stackId".into(), "ne".into(), "1st2".into()),
                ("removed".into(), "null".into(), "<nil>".into()),
            ]
        );
        let r = json!({ "name": "web", "stackId": "1st1", "removed": null, "scale": 3 });
        assert!(f.iter().all(|x| passes(&r, x)));
        let eq = |m: &str, v: &str| ("scale".to_owned(), m.to_owned(), v.to_owned());
        assert!(passes(&r, &eq("gt", "2")) && !passes(&r, &eq("lt", "3")));
        assert!(passes(&r, &("name".into(), "like".into(), "w_%".into())));
        assert!(passes(&r, &("unknown".into(), "eq".into(), "x".into())));
        assert!(!passes(
            &json!({ "removed": "2020-01-01T00:00:00Z" }),
            &("removed".into(), "null".into(), String::new())
        ));
    }
}

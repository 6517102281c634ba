//! The optional Prometheus check of a canary step: an instant query (`/api/v1/query`)
//! that must return one number no higher than the configured `max`.

use ferry_shared::config::PrometheusCheck;
use std::time::Duration;

/// What the query returned, once filled in for this deploy.
#[derive(Debug)]
pub enum Answer {
    Value(f64),
    /// The query matched no series (no traffic yet, or a wrong query): not judged.
    NoData,
}

/// The query with `{project}`, `{environment}`, `{revision}` and `{servers}` filled in;
/// `{servers}` is a regular expression matching the new release's proxy servers (e.g.
/// `r0-9002|r1-9004`), for `server=~"{servers}"`: which slot a new release takes
/// alternates from deploy to deploy, so a query cannot name it.
pub fn query_for(
    check: &PrometheusCheck,
    project: &str,
    environment: &str,
    revision: &str,
    servers: &[String],
) -> String {
    let mut servers = servers.to_vec();
    servers.sort();
    servers.dedup();
    check
        .query
        .replace("{project}", project)
        .replace("{environment}", environment)
        .replace("{revision}", revision)
        .replace("{servers}", &servers.join("|"))
}

/// Ask Prometheus. An error says what failed; the canary counts it as a broken step
/// (a check that cannot be made does not pass).
pub async fn ask(check: &PrometheusCheck, query: &str) -> Result<Answer, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}/api/v1/query", check.url.trim_end_matches('/'));
    let response = client
        .get(&url)
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| format!("Prometheus at {} did not answer: {e}", check.url))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("Prometheus answered {status} without JSON: {e}"))?;
    parse(&body)
}

/// Read an instant query's answer: a scalar, or a vector of exactly one sample.
pub fn parse(body: &serde_json::Value) -> Result<Answer, String> {
    if body["status"] != "success" {
        return Err(format!(
            "Prometheus refused the query: {}",
            body["error"].as_str().unwrap_or("no reason given")
        ));
    }
    let data = &body["data"];
    let value = match data["resultType"].as_str() {
        Some("scalar") => &data["result"][1],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) | None => return Ok(Answer::NoData),
            Some([one]) => &one["value"][1],
            Some(many) => {
                return Err(format!(
                    "the query returned {} series, not one: aggregate it (sum, max...)",
                    many.len()
                ));
            }
        },
        other => return Err(format!("the query returned a {other:?}, not a number")),
    };
    match value.as_str().map(str::parse::<f64>) {
        // NaN is what a ratio over no traffic gives: nothing to judge.
        Some(Ok(v)) if v.is_nan() => Ok(Answer::NoData),
        Some(Ok(v)) => Ok(Answer::Value(v)),
        _ => Err(format!("the query's value {value} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_names_this_deploy_and_the_new_release_s_servers() {
        let check = PrometheusCheck {
            url: "http://p".into(),
            query: r#"x{proxy="be_{project}_{environment}",server=~"{servers}",rev="{revision}"}"#
                .into(),
            max: 1.0,
        };
        let servers = [
            "r1-9004".to_owned(),
            "r0-9002".to_owned(),
            "r0-9002".to_owned(),
        ];
        assert_eq!(
            query_for(&check, "shop", "production", "42", &servers),
            r#"x{proxy="be_shop_production",server=~"r0-9002|r1-9004",rev="42"}"#
        );
    }

    #[test]
    fn one_number_is_read_from_a_vector_or_a_scalar() {
        let v = json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1.7e9, "0.05"]}]}});
        assert!(matches!(parse(&v), Ok(Answer::Value(x)) if x == 0.05));
        let s =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "2"]}});
        assert!(matches!(parse(&s), Ok(Answer::Value(x)) if x == 2.0));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert!(matches!(parse(&empty), Ok(Answer::NoData)));
        let nan = json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1.7e9, "NaN"]}]}});
        assert!(matches!(parse(&nan), Ok(Answer::NoData)));
        let two = json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]}});
        assert!(parse(&two).unwrap_err().contains("2 series"));
        let bad = json!({"status": "error", "error": "parse error at char 3"});
        assert!(parse(&bad).unwrap_err().contains("parse error"));
    }
}

//! The monitoring Ferry ships, checked with the real tools: the Prometheus scrape
//! configuration and alerting rules (`deploy/prometheus/`) with `promtool` (configuration
//! and rules load, the rules' unit tests pass), and the Grafana dashboard
//! (`deploy/grafana/ferry.json`) against a real Prometheus 2.42 scraping synthetic series
//! of every metric Ferry exposes: each panel and variable query is valid PromQL, uses only
//! Ferry's metric names (a renamed metric breaks this test) and returns series, so its
//! label selectors and groupings fit the labels the metrics carry.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package, which `tests/run.sh`
//! installs when missing); no harness component.

use ferry_testkit::{Prometheus, ScrapeJob};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Ferry's metrics, as its services expose them: the contract the dashboard and the alerts
/// are written against. Every series also carries `service="<name>"`.
///
/// Counters every service exposes.
const SERVICE_COUNTERS: &[&str] = &[
    "ferry_messages_handled_total",
    "ferry_messages_retried_total",
    "ferry_messages_parked_total",
    "ferry_messages_failed_total",
    "ferry_messages_requeued_total",
    "ferry_events_published_total",
    "ferry_publish_errors_total",
];
/// Gauges every service exposes.
const SERVICE_GAUGES: &[&str] = &["ferry_in_flight", "ferry_broker_connected"];
/// The hook-receiver's own counters (hooks and the run ledger).
const HOOK_RECEIVER_COUNTERS: &[&str] = &[
    "ferry_hooks_accepted_total",
    "ferry_hooks_ignored_total",
    "ferry_hooks_rejected_total",
    "ferry_hooks_unavailable_total",
    "ferry_ledger_events_recorded_total",
    "ferry_ledger_errors_total",
    "ferry_ledger_pruned_runs_total",
];
/// The notifier's own counters (services/notifier/src/counters.rs).
const NOTIFIER_COUNTERS: &[&str] = &[
    "ferry_notifications_sent_total",
    "ferry_notifications_merged_total",
    "ferry_notifications_retried_total",
    "ferry_notifications_failed_total",
    "ferry_notifications_duplicates_total",
];
/// Pipeline and delivery counters (hook-receiver, each event counted once across replicas),
/// with their labels besides `service`.
const PIPELINE_COUNTERS: &[(&str, &[&str])] = &[
    ("ferry_runs_started_total", &["project"]),
    (
        "ferry_deploys_total",
        &["project", "environment", "outcome"],
    ),
    ("ferry_rollbacks_total", &["project", "environment"]),
    (
        "ferry_production_deploys_total",
        &["project", "environment"],
    ),
    (
        "ferry_change_failures_total",
        &["project", "environment", "cause"],
    ),
];
/// Histograms (series `<name>_bucket`, `_sum`, `_count`), with their labels besides
/// `service` and `le`.
const HISTOGRAMS: &[(&str, &[&str])] = &[
    ("ferry_handler_duration_seconds", &[]),
    (
        "ferry_stage_duration_seconds",
        &["stage", "project", "environment", "outcome"],
    ),
    ("ferry_lead_time_seconds", &["project", "environment"]),
    ("ferry_time_to_restore_seconds", &["project", "environment"]),
];

/// The series names a query may select: the contract's, and Prometheus's own `up`.
fn known_series_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = SERVICE_COUNTERS
        .iter()
        .chain(SERVICE_GAUGES)
        .chain(HOOK_RECEIVER_COUNTERS)
        .chain(NOTIFIER_COUNTERS)
        .map(|n| (*n).to_owned())
        .collect();
    names.extend(PIPELINE_COUNTERS.iter().map(|(n, _)| (*n).to_owned()));
    for (name, _) in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names.insert("up".to_owned());
    names
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `promtool <args>` in the workspace root: whether it succeeded, and all it printed.
fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running promtool: {e} (Debian's prometheus package has it; tests/run.sh installs it)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_shipped_alert_rules_load_and_their_unit_tests_pass() {
    for args in [
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["check", "rules", "deploy/prometheus/alerts.yml"],
        ["test", "rules", "deploy/prometheus/alerts_test.yml"],
    ] {
        let started = Instant::now();
        let (ok, output) = promtool(&args);
        assert!(ok, "`promtool {}` failed:\n{output}", args.join(" "));
        println!(
            "promtool {}: ok in {:.1?}",
            args.join(" "),
            started.elapsed()
        );
    }
}

/// The rules' names and what they select, read from the YAML text (each rule starts with
/// a `- alert:` or `- record:` line; the tests' cases with `- alertname:`).
#[test]
fn the_alert_rules_use_only_ferry_s_metrics_and_each_alert_is_tested_firing_and_quiet() {
    let rules = read("deploy/prometheus/alerts.yml");
    let tests = read("deploy/prometheus/alerts_test.yml");
    let known = known_series_names();
    let mut problems = Vec::new();

    // The rules, one chunk each.
    let mut alerts: BTreeMap<String, String> = BTreeMap::new();
    let mut records = BTreeSet::new();
    let mut current: Option<(bool, String, String)> = None;
    let mut finish = |rule: Option<(bool, String, String)>| {
        if let Some((true, name, text)) = rule {
            alerts.insert(name, text);
        }
    };
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            finish(current.take());
            current = Some((true, name.trim().to_owned(), String::new()));
        } else if let Some(name) = trimmed.strip_prefix("- record:") {
            finish(current.take());
            records.insert(name.trim().to_owned());
            current = Some((false, name.trim().to_owned(), String::new()));
        } else if trimmed.starts_with("- name:") {
            finish(current.take());
        } else if let Some((_, _, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    finish(current.take());
    assert!(
        alerts.len() >= 10,
        "alerts.yml: only {} alerts found",
        alerts.len()
    );
    for (name, text) in &alerts {
        for needed in ["expr:", "severity:", "summary:", "description:"] {
            if !text.contains(needed) {
                problems.push(format!("alert {name} has no `{needed}`"));
            }
        }
    }

    // Names in the rules and in their tests' series: Ferry's, or recorded by a rule.
    for (file, text) in [("alerts.yml", &rules), ("alerts_test.yml", &tests)] {
        for word in words(text) {
            if word.contains(':') {
                if word.contains("ferry") && !records.contains(&word) {
                    problems.push(format!("{file}: {word} is recorded by no rule"));
                }
            } else if word.starts_with("ferry_") && !known.contains(&word) {
                problems.push(format!("{file}: {word} is not one of Ferry's metrics"));
            }
        }
    }

    // Every alert has a case where it fires and one where it stays quiet.
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests.split("- alertname:").skip(1) {
        let name = case
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if !alerts.contains_key(&name) {
            problems.push(format!(
                "alerts_test.yml tests {name}, which alerts.yml lacks"
            ));
        }
        if case.contains("exp_labels") {
            fires.insert(name.clone());
        }
        if case.contains("exp_alerts: []") {
            quiet.insert(name);
        }
    }
    for name in alerts.keys() {
        if !fires.contains(name) {
            problems.push(format!("alerts_test.yml never shows {name} firing"));
        }
        if !quiet.contains(name) {
            problems.push(format!("alerts_test.yml never shows {name} quiet"));
        }
    }
    assert!(
        problems.is_empty(),
        "deploy/prometheus:\n  {}",
        problems.join("\n  ")
    );
    println!(
        "{} alerts and {} recording rules, each alert tested firing and quiet",
        alerts.len(),
        records.len()
    );
}

/// The words of a text made of PromQL name characters (`[A-Za-z0-9_:]`).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}

/// The series names an expression selects: identifiers that are neither functions,
/// aggregations, keywords, label names (in `{...}`, `by (...)`, `on (...)`, ...) nor inside
/// strings or `[...]` durations.
fn metric_names(expr: &str) -> Vec<String> {
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Binary operators and literals, and the aggregations (`sum by (x) (...)` is followed
    // by `by`, not by a parenthesis).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = after_string(&chars, i);
        } else if c == '{' {
            i = after_closing(&chars, i, '}');
        } else if c == '[' {
            i = after_closing(&chars, i, ']');
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (1e3, 0.9, 1h30m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if GROUPING.contains(&lower.as_str()) {
                if call {
                    i = after_closing(&chars, next, ')');
                }
            } else if !call && !KEYWORDS.contains(&lower.as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The index after the string literal starting at `start` (its quote).
fn after_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    i
}

/// The index after the `close` matching the opening bracket at `start`, skipping strings.
fn after_closing(chars: &[char], start: usize, close: char) -> usize {
    let open = chars[start];
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = after_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

#[test]
fn metric_names_are_told_apart_from_functions_labels_and_keywords() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.9, sum by (stage, le) (rate(ferry_stage_duration_seconds_bucket{project=~"a|b", x="}"}[5m] offset 1h)))
               / on (stage) group_left (foo) (up > bool 0) unless absent(ferry_in_flight) or vector(0) and Inf"#
        ),
        [
            "ferry_stage_duration_seconds_bucket",
            "up",
            "ferry_in_flight"
        ]
    );
    assert_eq!(
        metric_names("sum(rate(x:y:z[1h])) by (le) / 1e3"),
        ["x:y:z"]
    );
}

/// A dashboard query: where it is, and its PromQL with Grafana's variables still in.
struct Query {
    place: String,
    expr: String,
}

/// Every `expr` in the dashboard (panels, rows' panels, annotations), with the panel title
/// and refId it belongs to.
fn panel_queries(value: &serde_json::Value, place: &str, out: &mut Vec<Query>) {
    match value {
        serde_json::Value::Object(map) => {
            let place = match map.get("title").and_then(|t| t.as_str()) {
                Some(title) => format!("panel {title:?}"),
                None => place.to_owned(),
            };
            if let Some(expr) = map.get("expr").and_then(|e| e.as_str()) {
                let refid = map.get("refId").and_then(|r| r.as_str()).unwrap_or("?");
                out.push(Query {
                    place: format!("{place} {refid}"),
                    expr: expr.to_owned(),
                });
            }
            for (key, child) in map {
                if key != "templating" {
                    panel_queries(child, &place, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                panel_queries(item, place, out);
            }
        }
        _ => {}
    }
}

/// Grafana's variables as the test sets them: one project and environment picked, the
/// intervals a week-long dashboard would have.
const VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$__interval", "1m"),
    ("$__range_s", "3600"),
    ("$__range", "1h"),
    ("$job", "ferry"),
    ("$project", "shop"),
    ("$environment", "production"),
];

fn substitute(expr: &str) -> String {
    let mut expr = expr.to_owned();
    for (name, value) in VARIABLES {
        expr = expr.replace(&format!("${{{}}}", &name[1..]), value);
        expr = expr.replace(name, value);
    }
    expr
}

#[tokio::test]
async fn every_grafana_panel_query_is_valid_promql_over_ferry_s_metrics() {
    let started = Instant::now();
    let text = read("deploy/grafana/ferry.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).expect("deploy/grafana/ferry.json is JSON");
    let mut problems = Vec::new();

    // Importable anywhere: the data source is an input, every panel and query uses it.
    let inputs = dashboard["__inputs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "no DS_PROMETHEUS data source input in __inputs"
    );
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut panel_count = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        if !ids.insert(panel["id"].as_u64().unwrap_or(0)) {
            problems.push(format!("panel {title:?}: id {} used twice", panel["id"]));
        }
        let grid = &panel["gridPos"];
        if grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99) > 24 {
            problems.push(format!("panel {title:?}: wider than the 24 grid columns"));
        }
        if panel["type"] == "row" {
            continue;
        }
        panel_count += 1;
        if panel["datasource"]["uid"] != "${DS_PROMETHEUS}" {
            problems.push(format!(
                "panel {title:?}: data source is not ${{DS_PROMETHEUS}}"
            ));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel {title:?}: no query"));
        }
        for target in &targets {
            if target["datasource"]["uid"] != "${DS_PROMETHEUS}" {
                problems.push(format!(
                    "panel {title:?} {}: data source is not ${{DS_PROMETHEUS}}",
                    target["refId"]
                ));
            }
        }
    }

    let mut queries = Vec::new();
    panel_queries(&dashboard, "dashboard", &mut queries);
    // Variables: `label_values(<selector>, <label>)`, asked of Prometheus as
    // `count by (<label>) (<selector>)`.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut variable_names = BTreeSet::new();
    let mut variable_queries = Vec::new();
    for variable in &variables {
        let name = variable["name"].as_str().unwrap_or_default().to_owned();
        let query = match &variable["query"] {
            serde_json::Value::String(q) => q.clone(),
            other => other["query"].as_str().unwrap_or_default().to_owned(),
        };
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'));
        match inner.and_then(|q| q.rsplit_once(',')) {
            Some((selector, label)) => variable_queries.push(Query {
                place: format!("variable {name}"),
                expr: format!("count by ({}) ({})", label.trim(), selector.trim()),
            }),
            None => problems.push(format!(
                "variable {name}: {query:?} is not label_values(<series>, <label>)"
            )),
        }
        if variable["datasource"]["uid"] != "${DS_PROMETHEUS}" {
            problems.push(format!(
                "variable {name}: data source is not ${{DS_PROMETHEUS}}"
            ));
        }
        variable_names.insert(name);
    }
    for needed in ["project", "environment"] {
        if !variable_names.contains(needed) {
            problems.push(format!("no template variable {needed}"));
        }
    }
    let panel_query_count = queries.len();
    queries.extend(variable_queries);

    // Only Ferry's metrics, by name.
    let known = known_series_names();
    let mut used = BTreeSet::new();
    for q in &queries {
        if q.expr.contains("__name__") {
            problems.push(format!(
                "{}: selects by __name__, which hides the metric names",
                q.place
            ));
        }
        // Grafana's variables are names too: read the query as Prometheus gets it.
        let expr = substitute(&q.expr);
        if expr.contains('$') {
            problems.push(format!(
                "{}: a variable the test does not know: {expr}",
                q.place
            ));
        }
        let names = metric_names(&expr);
        if names.is_empty() {
            problems.push(format!("{}: selects no series: {}", q.place, q.expr));
        }
        for name in names {
            if !known.contains(&name) {
                problems.push(format!(
                    "{}: {name} is not one of Ferry's metrics: {}",
                    q.place, q.expr
                ));
            }
            used.insert(name);
        }
    }
    assert!(
        problems.is_empty(),
        "deploy/grafana/ferry.json:\n  {}",
        problems.join("\n  ")
    );

    // A real Prometheus scraping every metric of the contract (values growing with each
    // scrape, so rates and quantiles have something to say): each query must parse
    // (a syntax error is HTTP 400 `bad_data`) and return series.
    // Its label sets are checked against the contract here rather than in the server.
    let _ = exposition(0);
    let scrapes = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(scrapes): axum::extract::State<Arc<AtomicU64>>| async move {
                    exposition(scrapes.fetch_add(1, Ordering::Relaxed) + 1)
                },
            ),
        )
        .with_state(scrapes);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let prometheus = Prometheus::start(&[ScrapeJob::new("ferry", &[&target])])
        .await
        .unwrap();
    assert!(
        prometheus
            .wait_for_target_up("ferry", Duration::from_secs(60))
            .await,
        "prometheus did not scrape the synthetic metrics at {target}:\n{}",
        prometheus.log()
    );
    // Three samples of each series, for rates and increases.
    let enough = ferry_testkit::wait_until(Duration::from_secs(30), || async {
        matches!(
            prometheus
                .value(r#"count_over_time(ferry_in_flight{service="builder"}[1m])"#)
                .await,
            Ok(Some(n)) if n >= 3.0
        )
    })
    .await;
    assert!(enough, "fewer than 3 scrapes in 30 s");

    let mut failed = Vec::new();
    for q in &queries {
        let expr = substitute(&q.expr);
        match prometheus.query(&expr).await {
            Err(e) => failed.push(format!("{}: {e:#}", q.place)),
            Ok(data) => {
                let empty = data["resultType"] == "vector"
                    && data["result"].as_array().is_none_or(|r| r.is_empty());
                if empty {
                    failed.push(format!(
                        "{}: no series (labels or grouping that Ferry's metrics lack?): {expr}",
                        q.place
                    ));
                }
            }
        }
    }
    server.abort();
    assert!(
        failed.is_empty(),
        "deploy/grafana/ferry.json, queries Prometheus refused or answered with nothing:\n  {}",
        failed.join("\n  ")
    );
    println!(
        "{panel_count} panels, {panel_query_count} panel queries and {} variable queries: \
         valid PromQL with data, {} of Ferry's series names used, in {:.1?}",
        queries.len() - panel_query_count,
        used.len(),
        started.elapsed()
    );
}

/// A series' labels, in order.
type LabelSet<'a> = Vec<(&'a str, &'a str)>;

/// The `/metrics` text of a Ferry whose every service, project and environment has been
/// busy: each metric of the contract with the labels it carries, counters and histogram
/// buckets growing with `n` (the scrape's number).
fn exposition(n: u64) -> String {
    use std::fmt::Write as _;
    const SERVICES: &[&str] = &[
        "hook-receiver",
        "builder",
        "pusher",
        "puller",
        "rancher-updater",
        "tester",
        "notifier",
    ];
    const DORA_BUCKETS: &[f64] = &[
        60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0,
    ];
    let mut out = String::new();
    let labels = |pairs: &[(&str, &str)]| -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let counter = |out: &mut String, name: &str, sets: &[LabelSet<'_>]| {
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, set) in sets.iter().enumerate() {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(set), n * (i as u64 + 1));
        }
    };
    let per_service: Vec<LabelSet<'_>> = SERVICES.iter().map(|s| vec![("service", *s)]).collect();
    let hook_receiver = vec![vec![("service", "hook-receiver")]];
    for name in SERVICE_COUNTERS {
        counter(&mut out, name, &per_service);
    }
    for name in HOOK_RECEIVER_COUNTERS {
        counter(&mut out, name, &hook_receiver);
    }
    for name in NOTIFIER_COUNTERS {
        counter(&mut out, name, &[vec![("service", "notifier")]]);
    }
    for (name, value) in SERVICE_GAUGES.iter().zip([2, 1]) {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for set in &per_service {
            let _ = writeln!(out, "{name}{{{}}} {value}", labels(set));
        }
    }

    // Label sets of the pipeline metrics, all from the hook-receiver.
    let hr = ("service", "hook-receiver");
    let projects = ["shop", "blog"];
    let environments = ["staging", "production"];
    let mut pipeline: BTreeMap<&str, Vec<LabelSet<'_>>> = BTreeMap::new();
    for project in projects {
        pipeline
            .entry("ferry_runs_started_total")
            .or_default()
            .push(vec![hr, ("project", project)]);
        let production = vec![hr, ("project", project), ("environment", "production")];
        for key in [
            "ferry_production_deploys_total",
            "ferry_lead_time_seconds",
            "ferry_time_to_restore_seconds",
        ] {
            pipeline.entry(key).or_default().push(production.clone());
        }
        for cause in ["test_failed", "rolled_back"] {
            let mut set = production.clone();
            set.push(("cause", cause));
            pipeline
                .entry("ferry_change_failures_total")
                .or_default()
                .push(set);
        }
        for environment in environments {
            let env = vec![hr, ("project", project), ("environment", environment)];
            pipeline
                .entry("ferry_rollbacks_total")
                .or_default()
                .push(env.clone());
            for outcome in ["succeeded", "failed", "superseded"] {
                let mut set = env.clone();
                set.push(("outcome", outcome));
                pipeline.entry("ferry_deploys_total").or_default().push(set);
            }
        }
        let stages = [("build", ""), ("push", "")].into_iter().chain(
            ["pull", "deploy", "test", "approval", "scale"]
                .into_iter()
                .flat_map(|s| environments.map(|e| (s, e))),
        );
        for (stage, environment) in stages {
            for outcome in ["passed", "failed", "ended"] {
                pipeline
                    .entry("ferry_stage_duration_seconds")
                    .or_default()
                    .push(vec![
                        hr,
                        ("stage", stage),
                        ("project", project),
                        ("environment", environment),
                        ("outcome", outcome),
                    ]);
            }
        }
    }
    for (name, label_names) in PIPELINE_COUNTERS {
        let sets = &pipeline[name];
        for set in sets {
            let have: Vec<&str> = set
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| *k != "service")
                .collect();
            assert_eq!(&have, label_names, "{name}'s labels");
        }
        counter(&mut out, name, sets);
    }

    let histogram = |out: &mut String, name: &str, bounds: &[f64], sets: &[LabelSet<'_>]| {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for set in sets {
            let l = labels(set);
            let sep = if l.is_empty() { "" } else { "," };
            // Observations spread over the buckets: n in each.
            for (i, bound) in bounds.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {}",
                    n * (i as u64 + 1)
                );
            }
            let count = n * (bounds.len() as u64 + 1);
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {count}");
            let _ = writeln!(
                out,
                "{name}_sum{{{l}}} {}",
                count as f64 * bounds[bounds.len() / 2]
            );
            let _ = writeln!(out, "{name}_count{{{l}}} {count}");
        }
    };
    for (name, label_names) in HISTOGRAMS {
        let (bounds, sets): (&[f64], Vec<LabelSet<'_>>) = match *name {
            "ferry_handler_duration_seconds" => {
                (&[0.005, 0.05, 0.5, 5.0, 60.0, 600.0], per_service.clone())
            }
            "ferry_stage_duration_seconds" => {
                (&[10.0, 60.0, 300.0, 1800.0, 7200.0], pipeline[name].clone())
            }
            _ => (DORA_BUCKETS, pipeline[name].clone()),
        };
        for set in &sets {
            let have: Vec<&str> = set
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| *k != "service")
                .collect();
            assert_eq!(&have, label_names, "{name}'s labels");
        }
        histogram(&mut out, name, bounds, &sets);
    }
    out
}

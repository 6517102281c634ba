//! What the Docker hosts say, independently of the events: which containers each run
//! had created in an environment (from the daemon's event log), and what runs now.

use ferry_testkit::{EventLog, docker};
use std::collections::HashMap;
use uuid::Uuid;

/// One container created for a run.
pub struct Created {
    pub name: String,
    pub time_ns: i64,
}

/// Records `project`'s container events on `host` from `since_s` (unix seconds) on.
pub fn record(host: &str, project: &str, since_s: u64) -> anyhow::Result<EventLog> {
    EventLog::start_since(
        host,
        i64::try_from(since_s)?,
        &[
            "type=container".into(),
            format!("label=io.ferry.project={project}"),
        ],
    )
}

/// Containers in `env` that `log` saw created, by run id (the `io.ferry.run-id` label).
pub fn created(log: &EventLog, env: &str) -> anyhow::Result<HashMap<Uuid, Vec<Created>>> {
    let mut by_run: HashMap<Uuid, Vec<Created>> = HashMap::new();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let attrs = &v["Actor"]["Attributes"];
        if v["Action"] != "create" || attrs["io.ferry.environment"] != env {
            continue;
        }
        let Some(run) = attrs["io.ferry.run-id"]
            .as_str()
            .and_then(|r| Uuid::parse_str(r).ok())
        else {
            continue;
        };
        by_run.entry(run).or_default().push(Created {
            name: attrs["name"].as_str().unwrap_or_default().to_owned(),
            time_ns: v["timeNano"].as_i64().unwrap_or_default(),
        });
    }
    Ok(by_run)
}

/// Names and run ids of the project's running containers in `env` on `host`.
pub async fn running(
    host: &str,
    project: &str,
    env: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let (host, p, e) = (
        host.to_owned(),
        format!("label=io.ferry.project={project}"),
        format!("label=io.ferry.environment={env}"),
    );
    let out = tokio::task::spawn_blocking(move || {
        docker(
            &host,
            None,
            &[
                "ps",
                "--filter",
                &p,
                "--filter",
                &e,
                "--format",
                "{{.Names}} {{.Label \"io.ferry.run-id\"}}",
            ],
        )
    })
    .await??;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, r)| (n.to_owned(), r.to_owned()))
        .collect())
}

/// Remove every container of the project (the chaos run's leftovers) from `host`.
pub async fn remove_all(host: &str, project: &str) {
    let (host, filter) = (host.to_owned(), format!("label=io.ferry.project={project}"));
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(ids) = docker(&host, None, &["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<&str> = ids.lines().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = docker(&host, None, &args);
            }
        }
    })
    .await;
}

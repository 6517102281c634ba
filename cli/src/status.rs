//! `ferry status <project>`: what runs where, read from the hosts, not from memory.

use ferry_shared::config::FerryConfig;
use ferry_targets::Environment;
use ferry_targets::status::{HostStatus, State};
use serde_json::{Value, json};
use std::process::ExitCode;

pub fn run(cfg: &FerryConfig, project: &str, output: &str) -> Result<(), ExitCode> {
    let Some(p) = cfg.projects.get(project) else {
        eprintln!("ferry: project `{project}` is not configured");
        return Err(ExitCode::from(2));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("ferry: {e}");
            ExitCode::FAILURE
        })?;
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for env in &p.environments {
            // An environment not configured (or a Rancher one without its section) has
            // nothing to show.
            let Ok(target) = Environment::of(cfg, project, env) else {
                continue;
            };
            rows.extend(target.status().await.iter().map(|h| row(env, h)));
        }
        rows
    });
    if output == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        println!(
            "{:<12} {:<10} {:<10} {:<16} {:<5} {:<9} IMAGE / STATE",
            "ENVIRONMENT", "HOST", "REVISION", "RUN", "SCALE", "HEALTH"
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            let run: String = s("run_id").chars().take(16).collect();
            let tail = if r["state"] == "running" {
                s("image")
            } else {
                s("state")
            };
            let scale = r["scale"].as_u64().map_or("-".into(), |n| n.to_string());
            println!(
                "{:<12} {:<10} {:<10} {:<16} {:<5} {:<9} {}",
                s("environment"),
                s("host"),
                s("revision"),
                run,
                scale,
                s("health"),
                tail
            );
            if let Some(split) = r["traffic"].as_array() {
                let parts: Vec<String> = split
                    .iter()
                    .map(|t| {
                        format!(
                            "{} {}% ({})",
                            t["server"].as_str().unwrap_or("-"),
                            t["percent"],
                            t["status"].as_str().unwrap_or("-")
                        )
                    })
                    .collect();
                println!("{:<12} {:<10} traffic: {}", "", "", parts.join(", "));
            }
            // Each instance where it is not simply the host's one replica, or is unwell.
            let instances = r["instances"].as_array().cloned().unwrap_or_default();
            if instances.len() > 1 || instances.iter().any(|i| i["health"] != "healthy") {
                for i in &instances {
                    let t = |k: &str| i[k].as_str().unwrap_or("-").to_owned();
                    println!(
                        "{:<12} {:<10} {:<27} {:<5} {:<9} {}",
                        "",
                        t("host"),
                        format!("  {}", t("name")),
                        "",
                        t("health"),
                        t("state")
                    );
                }
            }
        }
    }
    Ok(())
}

/// One row of `--output json` (its keys are a contract for scripts): where and what
/// runs, with `scale`, `health`, each of `instances` (`name`, `host`, `state`,
/// `health`) and, behind a proxy, its `traffic` per slot (`server`, `status`,
/// `percent`) where they could be read.
fn row(env: &str, h: &HostStatus) -> Value {
    let mut row = what_runs(env, h);
    if let Some(scale) = h.scale {
        row["scale"] = scale.into();
    }
    if let Some(health) = &h.health {
        row["health"] = health.as_str().into();
    }
    if !h.traffic.is_empty() {
        row["traffic"] = h
            .traffic
            .iter()
            .map(|t| json!({"server": t.server, "status": t.status, "percent": t.percent}))
            .collect();
    }
    if !h.instances.is_empty() {
        row["instances"] = h
            .instances
            .iter()
            .map(|i| json!({"name": i.name, "host": i.host, "state": i.state, "health": i.health}))
            .collect();
    }
    row
}

fn what_runs(env: &str, h: &HostStatus) -> Value {
    let host = &h.host;
    match &h.state {
        State::Running(r) if host.starts_with("rancher:") => {
            json!({"environment": env, "host": host, "state": "running",
                "revision": (!r.revision.is_empty()).then_some(&r.revision),
                "image": r.image, "run_id": r.run_id})
        }
        State::Running(r) => json!({"environment": env, "host": host, "state": "running",
            "revision": r.revision, "image": r.image, "run_id": r.run_id}),
        // Rancher's `active` is what a Docker host's "running" is; other states
        // (`upgraded`, `upgrading`...) are shown as they are.
        State::Service {
            state,
            running: Some(r),
        } => json!({"environment": env, "host": host,
            "state": state.as_deref().unwrap_or("unknown"),
            "revision": (!r.revision.is_empty()).then_some(&r.revision),
            "image": r.image, "run_id": r.run_id}),
        State::Service {
            state,
            running: None,
        } => json!({"environment": env, "host": host, "state": state}),
        State::Nothing if host.starts_with("rancher:") => {
            json!({"environment": env, "host": host, "state": "not created yet (the first deploy creates it)"})
        }
        State::Nothing => json!({"environment": env, "host": host, "state": "nothing running"}),
        State::Unreachable(err) => {
            json!({"environment": env, "host": host, "state": format!("unreachable: {err}")})
        }
        State::Error(err) => {
            json!({"environment": env, "host": host, "state": format!("error: {err}")})
        }
    }
}

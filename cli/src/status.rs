//! `ferry status <project>`: what runs where, read from the hosts, not from memory.

use ferry_shared::config::{FerryConfig, Target};
use rancher_updater::docker_target::running;
use rancher_updater::rancher_api::Api;
use rancher_updater::rancher_target::running_of;
use serde_json::json;
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
            let Some(e) = cfg.environments.get(env) else { continue };
            if let Target::Rancher(r) = &e.target {
                let host = format!("rancher:{}", r.service_id);
                rows.push(match Api::new(r).service().await {
                    // Rancher's `active` is what a Docker host's "running" is; other
                    // states (`upgraded`, `upgrading`...) are shown as they are.
                    Ok(svc) => match (svc["state"].as_str(), running_of(&svc)) {
                        (state, Some(run)) => json!({"environment": env, "host": host,
                            "state": if state == Some("active") { "running" } else { state.unwrap_or("unknown") },
                            "revision": (!run.revision.is_empty()).then_some(run.revision),
                            "image": run.image, "run_id": run.run_id}),
                        (state, None) => json!({"environment": env, "host": host, "state": state}),
                    },
                    Err(err) => json!({"environment": env, "host": host, "state": format!("error: {err}")}),
                });
                continue;
            }
            for host in &e.hosts {
                let Some(h) = cfg.docker_hosts.get(host) else { continue };
                let row = match ferry_shared::docker::connect_host(h).await {
                    Err(err) => json!({"environment": env, "host": host, "state": format!("unreachable: {err}")}),
                    Ok(docker) => match running(&docker, project, env).await {
                        Ok(Some(r)) => json!({"environment": env, "host": host, "state": "running",
                            "revision": r.revision, "image": r.image, "run_id": r.run_id}),
                        Ok(None) => json!({"environment": env, "host": host, "state": "nothing running"}),
                        Err(err) => json!({"environment": env, "host": host, "state": format!("error: {err}")}),
                    },
                };
                rows.push(row);
            }
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
            "{:<12} {:<10} {:<10} {:<16} IMAGE / STATE",
            "ENVIRONMENT", "HOST", "REVISION", "RUN"
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            let run: String = s("run_id").chars().take(16).collect();
            let tail = if r["state"] == "running" {
                s("image")
            } else {
                s("state")
            };
            println!(
                "{:<12} {:<10} {:<10} {:<16} {}",
                s("environment"),
                s("host"),
                s("revision"),
                run,
                tail
            );
        }
    }
    Ok(())
}

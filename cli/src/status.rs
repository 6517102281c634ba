//! `ferry status <project>`: what runs where, read from the hosts, not from memory.

use ferry_shared::config::FerryConfig;
use rancher_updater::docker_target::running;
use rancher_updater::rancher_api::Api;
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
            if let (true, Some(r)) = (e.target == "rancher", &e.rancher) {
                let api = Api::new(&r.url, &r.project_id, &r.service_id, &r.access_key, r.secret_key.expose());
                rows.push(match api.service().await {
                    Ok(svc) => json!({"environment": env, "host": format!("rancher:{}", r.service_id),
                        "state": svc["state"], "image": svc["launchConfig"]["imageUuid"].as_str().map(|i| i.trim_start_matches("docker:"))}),
                    Err(err) => json!({"environment": env, "host": format!("rancher:{}", r.service_id), "state": format!("error: {err}")}),
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

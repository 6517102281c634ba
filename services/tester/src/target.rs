//! Where an environment answers: its `base_url`, with `{host}` and `{port}` taken from
//! the container the run started there (the `docker` target moves between two ports
//! on every deploy, so a fixed URL would test the wrong container half the time).

use bollard::query_parameters::ListContainersOptionsBuilder;
use ferry_shared::config::{EnvironmentConfig, FerryConfig};
use std::collections::HashMap;

const DEFAULT_DOCKER_URL: &str = "http://{host}:{port}";

/// The base URL to test, or why there is none.
pub async fn base_url(
    cfg: &FerryConfig,
    project: &str,
    env_name: &str,
    env: &EnvironmentConfig,
) -> Result<Option<String>, String> {
    let template = match (&env.base_url, env.target.as_str()) {
        (Some(t), _) => t.clone(),
        (None, "docker") => DEFAULT_DOCKER_URL.to_owned(),
        (None, _) => return Ok(None),
    };
    if !template.contains("{host}") && !template.contains("{port}") {
        return Ok(Some(template));
    }
    let Some(host) = env.hosts.first().and_then(|h| cfg.docker_hosts.get(h)) else {
        return Err(format!(
            "environments.{env_name} has no hosts to find {{host}}/{{port}} on"
        ));
    };
    let docker = ferry_shared::docker::connect(&host.url)
        .await
        .map_err(|e| e.to_string())?;
    let filters = HashMap::from([
        (
            "label",
            vec![
                format!("io.ferry.project={project}"),
                format!("io.ferry.environment={env_name}"),
            ],
        ),
        ("status", vec!["running".to_owned()]),
    ]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| format!("cannot list the containers on {}: {e}", host.url))?;
    let port = list
        .first()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get("io.ferry.port"))
        .cloned()
        .ok_or_else(|| {
            format!(
                "no container of {project} runs in {env_name} on {}",
                host.url
            )
        })?;
    Ok(Some(
        template
            .replace("{host}", &host.address())
            .replace("{port}", &port),
    ))
}

//! Where an environment answers: its `base_url`, with `{host}` and `{port}` taken from
//! the container the run started there (the `docker` target moves between two ports
//! on every deploy, so a fixed URL would test the wrong container half the time).

use ferry_shared::config::{EnvironmentConfig, FerryConfig};

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
    let docker = ferry_shared::docker::connect_host(host)
        .await
        .map_err(|e| e.to_string())?;
    let port = rancher_updater::docker_target::running(&docker, project, env_name)
        .await
        .map_err(|e| format!("cannot list the containers on {}: {e}", host.url))?
        .map(|r| r.port.to_string())
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

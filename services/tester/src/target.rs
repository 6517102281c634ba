//! Where an environment answers: its `base_url`, with `{host}` and `{port}` taken from
//! the container **this run** started there. The `docker` target moves between two
//! ports on every deploy, and a newer run may have replaced this one by the time its
//! tests start; testing "whatever runs there now" would pass or fail the wrong revision.

use ferry_shared::config::{EnvironmentConfig, FerryConfig, Target};
use uuid::Uuid;

const DEFAULT_DOCKER_URL: &str = "http://{host}:{port}";

/// What the tester found where the run was deployed.
#[derive(Debug, PartialEq)]
pub enum Located {
    /// Test at this URL (`None`: the environment has no URL; only a test container runs).
    Url(Option<String>),
    /// A newer run's container serves the environment now: this run has nothing left to
    /// test, and its result could not matter.
    Replaced { image: String, run_id: Uuid },
    /// Nothing of the project runs there any more: the application stopped after its
    /// deploy, which is a failed test, not a reason to retry.
    Stopped(String),
}

/// Where to test the run `run_id`, which deployed `image`, or why that cannot be told yet
/// (retried).
pub async fn locate(
    cfg: &FerryConfig,
    project: &str,
    env_name: &str,
    env: &EnvironmentConfig,
    (run_id, image): (Uuid, &str),
) -> Result<Located, String> {
    let template = match (&env.base_url, &env.target) {
        (Some(t), _) => t.clone(),
        (None, Target::Docker) => DEFAULT_DOCKER_URL.to_owned(),
        (None, Target::Rancher(_)) => return Ok(Located::Url(None)),
    };
    if !template.contains("{host}") && !template.contains("{port}") {
        return Ok(Located::Url(Some(template)));
    }
    let Some(host) = env.hosts.first().and_then(|h| cfg.docker_hosts.get(h)) else {
        return Err(format!(
            "environments.{env_name} has no hosts to find {{host}}/{{port}} on"
        ));
    };
    let docker = ferry_shared::docker::connect_host(host)
        .await
        .map_err(|e| e.to_string())?;
    let running = rancher_updater::docker_target::running_all(&docker, project, env_name)
        .await
        .map_err(|e| format!("cannot list the containers on {}: {e}", host.url))?;
    // The run's own container; else one running the very digest the run deployed (a
    // deploy that found its image already running leaves that container in place).
    let ours = running
        .iter()
        .filter(|r| r.run_id == Some(run_id))
        .min_by_key(|r| r.replica)
        .or_else(|| running.iter().find(|r| r.image == image));
    Ok(match (ours, running.first()) {
        (Some(r), _) => Located::Url(Some(
            template
                .replace("{host}", &host.address())
                .replace("{port}", &r.port.to_string()),
        )),
        (None, Some(newest)) => Located::Replaced {
            image: newest.image.clone(),
            run_id: newest.run_id.unwrap_or_default(),
        },
        (None, None) => Located::Stopped(format!(
            "no container of {project} runs in {env_name} on {} any more: it stopped after \
             its deploy (see `docker logs` of the stopped container there)",
            host.url
        )),
    })
}

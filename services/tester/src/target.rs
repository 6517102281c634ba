//! Where an environment answers: its `base_url`, with `{host}` and `{port}` taken from
//! the container **this run** started there. The `docker` target moves between two
//! ports on every deploy, and a newer run may have replaced this one by the time its
//! tests start; testing "whatever runs there now" would pass or fail the wrong revision.
//!
//! `deploy.succeeded` names where the run answers (per host and replica), so finding it
//! needs no Docker host. Whether the run still serves there (not replaced, not stopped)
//! is asked of `ferry_targets`, the one place that works out what runs; when the hosts
//! cannot tell, the run is tested where the event says it answers. An event of an older
//! Ferry names no endpoint: then the run's container is looked up on the hosts.

use ferry_shared::config::{EnvironmentConfig, FerryConfig};
use ferry_shared::event::DeploySucceeded;
use ferry_targets::Environment;
use ferry_targets::locate::{Whereabouts, fill, needs_endpoint, url_template};
use std::time::Duration;
use uuid::Uuid;

/// How long asking the first host whether the run still serves may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Where to test run `run_id`'s deploy, or why that cannot be told yet (retried).
pub async fn locate(
    cfg: &FerryConfig,
    (project, env_name): (&str, &str),
    env: &EnvironmentConfig,
    run_id: Uuid,
    deployed: &DeploySucceeded,
) -> Result<Located, String> {
    let Some(template) = url_template(env) else {
        return Ok(Located::Url(None));
    };
    if !needs_endpoint(&template) {
        return Ok(Located::Url(Some(template)));
    }
    let target = Environment::of(cfg, project, env_name).map_err(|e| e.to_string())?;
    let check = tokio::time::timeout(CHECK_TIMEOUT, target.find_run(run_id, &deployed.image));
    let found = match check.await {
        Ok(found) => found.map(|r| r.map_err(|e| e.to_string())),
        Err(_) => Some(Err(format!(
            "the environment's first host did not answer within {} s",
            CHECK_TIMEOUT.as_secs()
        ))),
    };
    let Some(found) = found else {
        // A target without Ferry's containers has no {host}/{port} to fill.
        return Ok(Located::Url(Some(template)));
    };
    // Where the updater says the run answers: its first host and replica.
    let announced = deployed.endpoints().next().map(|(_, e)| e.clone());
    let found = match (found, &announced) {
        (Ok(w), _) => w,
        (Err(why), Some(endpoint)) => {
            tracing::warn!(
                "cannot check that the run still serves ({why}); testing it where it was deployed"
            );
            Whereabouts::Here(endpoint.clone())
        }
        (Err(why), None) => return Err(why),
    };
    Ok(match found {
        Whereabouts::Here(on_host) => Located::Url(Some(fill(
            &template,
            announced.as_ref().unwrap_or(&on_host),
        ))),
        Whereabouts::Replaced { image, run_id } => Located::Replaced { image, run_id },
        Whereabouts::Gone(why) => Located::Stopped(why),
    })
}

//! `ferry scale` on a Rancher service: set its `scale` (a `PUT` of the service, as
//! the v2-beta API scales) once it is settled, and wait until Rancher runs that many
//! instances and, with a health check, reports them healthy.

use super::{RancherTarget, Settle, classify, find, id_of, settled};
use crate::{DeployError, Failure, ScaleOutcome};
use ferry_rancher::Api;
use serde_json::Value;
use std::time::{Duration, Instant};

pub(super) async fn scale(t: &RancherTarget<'_>, to: u32) -> Result<ScaleOutcome, DeployError> {
    let api = t.api();
    let timeout = Duration::from_secs(t.config.timeout_secs);
    let failed = |e, doing: &str| classify(e, doing).map(ScaleOutcome::Failed);
    let service = match find(&api, t).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Ok(ScaleOutcome::Failed(Failure::RancherNotCreated {
                service: t.name(),
            }));
        }
        Err(e) => return failed(e, "reading the service"),
    };
    let service = match settled(&api, t.config, service, timeout).await {
        Ok(s) => s,
        Err(Settle::Api(e, doing)) => return failed(e, doing),
        Err(Settle::Other(e)) => return Err(e),
    };
    let id = id_of(&service);
    let from = service["scale"].as_u64().unwrap_or(0) as u32;
    if from != to
        && let Err(e) = api.set_scale(&id, to).await
    {
        return failed(e, "setting the scale");
    }
    match wait_scaled(&api, &id, to, timeout).await {
        Ok(()) => Ok(ScaleOutcome::Scaled { from, to }),
        Err(why) => Ok(ScaleOutcome::Failed(Failure::ScaleIncomplete {
            target: t.name(),
            to,
            why,
        })),
    }
}

/// Wait for `active` with `to` instances running, and healthy where there is a check.
async fn wait_scaled(api: &Api, id: &str, to: u32, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("unknown");
    while Instant::now() < deadline {
        match (api.service(id).await, api.instances(id).await) {
            (Ok(s), Ok(instances)) => {
                let running = instances.iter().filter(|i| i["state"] == "running").count();
                let health = s["healthState"].as_str().unwrap_or("healthy");
                if s["state"] == "active"
                    && running == to as usize
                    && matches!(health, "healthy" | "started-once")
                {
                    return Ok(());
                }
                last = describe(&s, running);
            }
            (Err(e), _) | (_, Err(e)) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("after {} s: {last}", timeout.as_secs()))
}

fn describe(s: &Value, running: usize) -> String {
    format!(
        "the service is `{}`, `{}`, with {running} instance(s) running",
        s["state"].as_str().unwrap_or("unknown"),
        s["healthState"].as_str().unwrap_or("unknown")
    )
}

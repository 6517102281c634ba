//! The `rancher` target: upgrade a Rancher 1.6 service to `imageUuid:
//! docker:<repo>@<digest>` with an in-service strategy, wait for `upgraded`, then
//! `finishupgrade` and wait for `active`. A service an earlier run left `upgraded` is
//! finished or rolled back first (`on_leftover_upgraded`); an upgrade stuck past the
//! timeout is cancelled and rolled back. Every Rancher error ends in a clear failure
//! or a retry, never a stuck run.
//!
//! The service is `rancher.service_id`, or the project's own, found by its stack and
//! service name; a first deploy creates that one (`create`), and `ferry scale`
//! changes its scale (`scale`).

mod create;
mod scale;

use crate::{Deploy, DeployError, Failure, Outcome, ReadError, Running, ScaleOutcome, Target};
use ferry_docker::labels::Deployed;
use ferry_rancher::{Api, ApiError, ServiceState, running_of, state_of};
use ferry_shared::config::{FerryConfig, LeftoverAction, RancherConfig};
use ferry_shared::order::next_mark;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One project's Rancher service in an environment.
pub struct RancherTarget<'a> {
    pub(crate) cfg: &'a FerryConfig,
    pub(crate) project: &'a str,
    pub(crate) environment: &'a str,
    pub(crate) config: &'a RancherConfig,
}

impl RancherTarget<'_> {
    /// The service resource as Rancher reports it now; none when the project's service
    /// (found by name) does not exist yet.
    pub async fn service(&self) -> Result<Option<Value>, ApiError> {
        find(&Api::new(self.config), self).await
    }

    /// `rancher:<service id>`, or `rancher:<stack>/<service>`: how the service is
    /// named among hosts.
    pub fn name(&self) -> String {
        match &self.config.service_id {
            Some(id) => format!("rancher:{id}"),
            None => {
                let (stack, service) = self.config.names(self.project, self.environment);
                format!("rancher:{stack}/{service}")
            }
        }
    }

    pub(crate) fn api(&self) -> Api {
        Api::new(self.config)
    }

    /// The service's instances, with the name of the host each is on.
    pub async fn instances(&self, id: &str) -> Result<Vec<(String, Value)>, ApiError> {
        let api = self.api();
        let (instances, hosts) = tokio::join!(api.instances(id), api.hosts());
        let hosts = hosts.unwrap_or_default();
        Ok(instances?
            .into_iter()
            .map(|i| {
                let host = hosts
                    .iter()
                    .find(|h| h["id"] == i["hostId"])
                    .and_then(|h| h["hostname"].as_str().or(h["name"].as_str()))
                    .or(i["hostId"].as_str())
                    .unwrap_or("-")
                    .to_owned();
                (host, i)
            })
            .collect())
    }
}

/// The service resource: `service_id`'s, or the project's own by stack and service name
/// (none when it does not exist yet).
pub(super) async fn find(api: &Api, t: &RancherTarget<'_>) -> Result<Option<Value>, ApiError> {
    if let Some(id) = &t.config.service_id {
        return api.service(id).await.map(Some);
    }
    let (stack, service) = t.config.names(t.project, t.environment);
    let Some(stack) = api.find_stack(&stack).await? else {
        return Ok(None);
    };
    api.find_service(stack["id"].as_str().unwrap_or_default(), &service)
        .await
}

/// A resource's id.
pub(super) fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_default().to_owned()
}

impl Target for RancherTarget<'_> {
    async fn running(&self) -> Result<Option<Running>, ReadError> {
        Ok(self.service().await?.as_ref().and_then(running_of))
    }

    async fn deploy(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        upgrade(self, d, false).await
    }

    async fn roll_back(&self, d: &Deploy<'_>) -> Result<Outcome, DeployError> {
        upgrade(self, d, true).await
    }

    async fn scale(&self, to: u32) -> Result<ScaleOutcome, DeployError> {
        scale::scale(self, to).await
    }
}

/// The service settled (`active`): what an earlier run or another client left
/// `upgraded` is finished or rolled back first (`on_leftover_upgraded`).
pub(super) async fn settled(
    api: &Api,
    r: &RancherConfig,
    service: Value,
    timeout: Duration,
) -> Result<Value, Settle> {
    let id = id_of(&service);
    match state_of(&service) {
        ServiceState::Active => Ok(service),
        ServiceState::Upgraded => {
            let action = match r.on_leftover_upgraded {
                LeftoverAction::Rollback => "rollback",
                LeftoverAction::Finish => "finishupgrade",
            };
            tracing::warn!("service was left upgraded by an earlier run: {action}");
            api.action(&id, action, json!({}))
                .await
                .map_err(|e| Settle::Api(e, action))?;
            wait_for(api, &id, &["active"], timeout)
                .await
                .map_err(|why| Settle::Other(DeployError::RancherUnsettled(why)))
        }
        other => Err(Settle::Other(DeployError::RancherUnsettled(format!(
            "the service is `{other}`; waiting for it to settle"
        )))),
    }
}

/// Why the service could not be settled.
pub(super) enum Settle {
    Api(ApiError, &'static str),
    Other(DeployError),
}

/// The launchConfig that runs `d`, recording it in Ferry's labels so the next deploy
/// (and `ferry status`) can read what runs and what ran before.
fn launch_config(service: &Value, running: Option<&Running>, d: &Deploy<'_>) -> Value {
    let mut launch = service["launchConfig"].clone();
    launch["imageUuid"] = json!(format!("docker:{}", d.image));
    if !launch["labels"].is_object() {
        launch["labels"] = json!({});
    }
    let deployed = Deployed {
        image: d.image,
        revision: d.revision,
        run_id: d.run_id,
        mark: next_mark(running.and_then(|o| o.order), d.order, d.resets_mark),
        previous: running.map(|o| (o.image.as_str(), o.revision.as_str())),
    };
    for (k, v) in deployed.labels() {
        launch["labels"][k] = json!(v);
    }
    launch
}

async fn upgrade(
    t: &RancherTarget<'_>,
    d: &Deploy<'_>,
    rollback: bool,
) -> Result<Outcome, DeployError> {
    let r = t.config;
    let api = t.api();
    let timeout = Duration::from_secs(r.timeout_secs);
    let found = match find(&api, t).await {
        Ok(Some(s)) => s,
        Ok(None) if rollback => {
            return Ok(Outcome::Failed(Failure::RancherNotCreated {
                service: t.name(),
            }));
        }
        Ok(None) => return create::create(t, &api, d).await,
        Err(e) => return fail_or_retry(e, "reading the service"),
    };
    let service = match settled(&api, r, found, timeout).await {
        Ok(s) => s,
        Err(Settle::Api(e, doing)) => return fail_or_retry(e, doing),
        Err(Settle::Other(e)) => return Err(e),
    };
    let id = id_of(&service);
    let running = running_of(&service);
    if let Some(old) = &running {
        if old.image == d.image {
            return Ok(Outcome::Succeeded {
                previous_image: old.previous_image.clone(),
                previous_revision: old.previous_revision.clone(),
                hosts: vec![],
            });
        }
        if !rollback
            && d.order
                .is_some_and(|o| o.is_behind(old.order.as_ref(), &old.revision, d.revision))
        {
            return Ok(Outcome::Superseded {
                running: old.clone(),
            });
        }
    }
    let launch = launch_config(&service, running.as_ref(), d);
    let strategy = json!({ "inServiceStrategy": {
        "batchSize": r.batch_size, "intervalMillis": r.interval_millis, "startFirst": r.start_first,
        "launchConfig": launch, "secondaryLaunchConfigs": []
    }});
    if let Err(e) = api.action(&id, "upgrade", strategy).await {
        return fail_or_retry(e, "upgrade");
    }
    if let Err(why) = wait_for(&api, &id, &["upgraded"], timeout).await {
        // Stuck: cancel and roll back so the service is left as it was.
        let _ = api.action(&id, "cancelupgrade", json!({})).await;
        let _ = wait_for(&api, &id, &["canceled-upgrade", "upgraded"], timeout).await;
        let _ = api.action(&id, "rollback", json!({})).await;
        let rolled_back = wait_for(&api, &id, &["active"], timeout).await.is_ok();
        return Ok(Outcome::Failed(Failure::UpgradeIncomplete {
            why,
            rolled_back,
        }));
    }
    // With a health check, the new instances must pass it before the old ones go for
    // good (`finishupgrade`); until then a rollback is instant.
    if launch["healthCheck"].is_object()
        && let Err(why) = wait_healthy(&api, &id, timeout).await
    {
        let _ = api.action(&id, "rollback", json!({})).await;
        let rolled_back = wait_for(&api, &id, &["active"], timeout).await.is_ok();
        return Ok(Outcome::Failed(Failure::UpgradeIncomplete {
            why: format!("the new instances did not pass their health check: {why}"),
            rolled_back,
        }));
    }
    if let Err(e) = api.action(&id, "finishupgrade", json!({})).await {
        return fail_or_retry(e, "finishupgrade");
    }
    match wait_for(&api, &id, &["active"], timeout).await {
        Ok(_) => Ok(Outcome::Succeeded {
            previous_image: running.as_ref().map(|o| o.image.clone()),
            previous_revision: running.map(|o| o.revision),
            hosts: vec![],
        }),
        Err(why) => Err(DeployError::RancherUnsettled(why)),
    }
}

/// Poll until the service reaches one of `states`.
pub(super) async fn wait_for(
    api: &Api,
    id: &str,
    states: &[&str],
    timeout: Duration,
) -> Result<Value, String> {
    poll_service(api, id, timeout, |s| {
        let state = state_of(s);
        if states.contains(&state.as_str()) {
            Ok(())
        } else {
            Err(state.to_string())
        }
    })
    .await
    .map_err(|last| {
        format!(
            "still `{last}` after {} s, expected {states:?}",
            timeout.as_secs()
        )
    })
}

/// Wait for the service's health checks to pass on its instances.
pub(super) async fn wait_healthy(api: &Api, id: &str, timeout: Duration) -> Result<(), String> {
    poll_service(api, id, timeout, |s| match s["healthState"].as_str() {
        Some("healthy") => Ok(()),
        other => Err(other.unwrap_or("unknown").to_owned()),
    })
    .await
    .map(drop)
    .map_err(|last| format!("its health is still `{last}` after {} s", timeout.as_secs()))
}

/// Read the service until `done` accepts it; what `done` (or Rancher) last said when
/// `timeout` runs out first.
async fn poll_service(
    api: &Api,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> Result<(), String>,
) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("unknown");
    while Instant::now() < deadline {
        match api.service(id).await {
            Ok(s) => match done(&s) {
                Ok(()) => return Ok(s),
                Err(why) => last = why,
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last)
}

/// Client errors are failures a person must fix; the rest are worth retrying.
pub(super) fn fail_or_retry(e: ApiError, doing: &str) -> Result<Outcome, DeployError> {
    classify(e, doing).map(Outcome::Failed)
}

/// A failure a person must fix, or an error worth retrying.
pub(super) fn classify(e: ApiError, doing: &str) -> Result<Failure, DeployError> {
    let doing = doing.to_owned();
    Ok(match &e {
        ApiError::Status { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
        {
            Failure::RancherKeys { doing, source: e }
        }
        ApiError::Certificate(_) => Failure::RancherCertificate { doing, source: e },
        ApiError::Client(c) => Failure::RancherClient(c.clone()),
        ApiError::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
            Failure::RancherNoService(e)
        }
        // ActionNotAvailable: the state changed under us; read it again later.
        ApiError::Status { status, .. }
            if status.is_client_error() && *status != StatusCode::UNPROCESSABLE_ENTITY =>
        {
            Failure::RancherRefused { doing, source: e }
        }
        _ => return Err(DeployError::Rancher { doing, source: e }),
    })
}

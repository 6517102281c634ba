//! The `rancher` target: upgrade a Rancher 1.6 service to `imageUuid:
//! docker:<repo>@<digest>` with an in-service strategy, wait for `upgraded`, then
//! `finishupgrade` and wait for `active`. A service an earlier run left `upgraded` is
//! finished or rolled back first (`on_leftover_upgraded`); an upgrade stuck past the
//! timeout is cancelled and rolled back. Every Rancher error ends in a clear failure
//! or a retry, never a stuck run.

use crate::docker_target::{
    LABEL_IMAGE, LABEL_PREVIOUS_IMAGE, LABEL_PREVIOUS_REVISION, LABEL_REVISION, LABEL_RUN, Outcome,
    Running,
};
use crate::ordering::{LABEL_ORDER, mark_of};
use crate::rancher_api::{Api, ApiError};
use ferry_shared::config::{LeftoverAction, RancherConfig};
use ferry_shared::order::{RunOrder, next_mark};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Transient trouble (Rancher unreachable, 5xx, a transition still going on): retry.
pub struct Retry(pub String);

/// What is deployed, recorded in the launchConfig's labels so the next deploy (and
/// `ferry status`) can read what runs and what ran before.
pub struct Deploying<'a> {
    pub image: &'a str,
    pub revision: &'a str,
    pub run_id: uuid::Uuid,
    /// The run's place; none for a run started by an older Ferry.
    pub order: Option<&'a RunOrder>,
    /// An operator's explicit deploy: its place becomes the mark (see `next_mark`).
    pub resets_mark: bool,
    pub rollback: bool,
}

/// What the service runs now, read from its launchConfig (and Ferry's labels on it).
pub async fn current(r: &RancherConfig) -> Result<Option<Running>, String> {
    let service = Api::new(r).service().await.map_err(|e| e.to_string())?;
    Ok(running_of(&service))
}

/// What a service resource runs, from its launchConfig and Ferry's labels on it.
pub fn running_of(service: &Value) -> Option<Running> {
    let launch = &service["launchConfig"];
    let image = launch["imageUuid"].as_str()?.trim_start_matches("docker:");
    let label = |k: &str| launch["labels"][k].as_str().map(str::to_owned);
    Some(Running {
        id: service["id"].as_str().unwrap_or_default().to_owned(),
        image: label(LABEL_IMAGE).unwrap_or_else(|| image.to_owned()),
        revision: label(LABEL_REVISION).unwrap_or_default(),
        run_id: label(LABEL_RUN).and_then(|r| uuid::Uuid::parse_str(&r).ok()),
        order: mark_of(label(LABEL_ORDER).as_deref()),
        port: 0,
        replica: 0,
        previous_image: label(LABEL_PREVIOUS_IMAGE),
        previous_revision: label(LABEL_PREVIOUS_REVISION),
    })
}

pub async fn deploy(r: &RancherConfig, d: &Deploying<'_>) -> Result<Outcome, Retry> {
    let image = d.image;
    let api = Api::new(r);
    let timeout = Duration::from_secs(r.timeout_secs);
    let mut service = match api.service().await {
        Ok(s) => s,
        Err(e) => return fail_or_retry(e, "reading the service"),
    };
    // Settle what an earlier run or another client left behind.
    service = match state(&service) {
        "active" => service,
        "upgraded" => {
            let action = match r.on_leftover_upgraded {
                LeftoverAction::Rollback => "rollback",
                LeftoverAction::Finish => "finishupgrade",
            };
            tracing::warn!("service was left upgraded by an earlier run: {action}");
            if let Err(e) = api.action(action, json!({})).await {
                return fail_or_retry(e, action);
            }
            match wait_for(&api, &["active"], timeout).await {
                Ok(s) => s,
                Err(why) => return Err(Retry(why)),
            }
        }
        other => {
            return Err(Retry(format!(
                "the service is `{other}`; waiting for it to settle"
            )));
        }
    };
    let running = running_of(&service);
    if let Some(old) = &running {
        if old.image == image {
            return Ok(Outcome::Succeeded {
                previous_image: old.previous_image.clone(),
                previous_revision: old.previous_revision.clone(),
                hosts: vec![],
            });
        }
        if !d.rollback
            && d.order
                .is_some_and(|o| o.is_behind(old.order.as_ref(), &old.revision, d.revision))
        {
            return Ok(Outcome::Superseded {
                running: old.clone(),
            });
        }
    }
    let mut launch = service["launchConfig"].clone();
    launch["imageUuid"] = json!(format!("docker:{image}"));
    if !launch["labels"].is_object() {
        launch["labels"] = json!({});
    }
    let labels = &mut launch["labels"];
    labels[LABEL_IMAGE] = json!(image);
    labels[LABEL_REVISION] = json!(d.revision);
    labels[LABEL_RUN] = json!(d.run_id.to_string());
    if let Some(mark) = next_mark(
        running.as_ref().and_then(|o| o.order),
        d.order,
        d.resets_mark,
    ) {
        labels[LABEL_ORDER] = json!(mark.to_string());
    }
    if let Some(old) = &running {
        labels[LABEL_PREVIOUS_IMAGE] = json!(old.image);
        labels[LABEL_PREVIOUS_REVISION] = json!(old.revision);
    }
    let strategy = json!({ "inServiceStrategy": {
        "batchSize": r.batch_size, "intervalMillis": r.interval_millis, "startFirst": r.start_first,
        "launchConfig": launch, "secondaryLaunchConfigs": []
    }});
    if let Err(e) = api.action("upgrade", strategy).await {
        return fail_or_retry(e, "upgrade");
    }
    if let Err(why) = wait_for(&api, &["upgraded"], timeout).await {
        // Stuck: cancel and roll back so the service is left as it was.
        let _ = api.action("cancelupgrade", json!({})).await;
        let _ = wait_for(&api, &["canceled-upgrade", "upgraded"], timeout).await;
        let _ = api.action("rollback", json!({})).await;
        let back = wait_for(&api, &["active"], timeout).await.is_ok();
        return Ok(Outcome::Failed {
            reason: format!(
                "the upgrade did not complete ({why}); {}",
                if back {
                    "rolled back to the previous image"
                } else {
                    "the rollback did not complete either: check the service in Rancher"
                }
            ),
        });
    }
    if let Err(e) = api.action("finishupgrade", json!({})).await {
        return fail_or_retry(e, "finishupgrade");
    }
    match wait_for(&api, &["active"], timeout).await {
        Ok(_) => Ok(Outcome::Succeeded {
            previous_image: running.as_ref().map(|o| o.image.clone()),
            previous_revision: running.map(|o| o.revision),
            hosts: vec![],
        }),
        Err(why) => Err(Retry(why)),
    }
}

fn state(service: &Value) -> &str {
    service["state"].as_str().unwrap_or("unknown")
}

/// Poll until the service reaches one of `states`.
async fn wait_for(api: &Api, states: &[&str], timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("unknown");
    while Instant::now() < deadline {
        match api.service().await {
            Ok(s) if states.contains(&state(&s)) => return Ok(s),
            Ok(s) => last = state(&s).to_owned(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "still `{last}` after {} s, expected {states:?}",
        timeout.as_secs()
    ))
}

/// Client errors are failures a person must fix; the rest are worth retrying.
fn fail_or_retry(e: ApiError, doing: &str) -> Result<Outcome, Retry> {
    match &e {
        ApiError::Status { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
        {
            Ok(Outcome::Failed {
                reason: format!(
                    "Rancher refused the API keys while {doing}: check environments.<env>.rancher.access_key/secret_key ({e})"
                ),
            })
        }
        ApiError::Certificate(_) => Ok(Outcome::Failed {
            reason: format!("{e} (while {doing})"),
        }),
        ApiError::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
            Ok(Outcome::Failed {
                reason: format!(
                    "Rancher has no such service: check rancher.project_id and service_id ({e})"
                ),
            })
        }
        // ActionNotAvailable: the state changed under us; read it again later.
        ApiError::Status { status, .. }
            if status.is_client_error() && *status != StatusCode::UNPROCESSABLE_ENTITY =>
        {
            Ok(Outcome::Failed {
                reason: format!("Rancher refused {doing}: {e}"),
            })
        }
        _ => Err(Retry(format!("{doing}: {e}"))),
    }
}

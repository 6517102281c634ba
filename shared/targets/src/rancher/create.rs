//! A project's first deploy into a Rancher environment where its service does not
//! exist yet: the stack (if missing) and the service are created from the launch file
//! in the project's config repo (`rancher/<env>.json`), running the run's image by
//! digest, and the deploy succeeds once the service is `active` and, with a health
//! check, `healthy`.
//!
//! The updater reads the launch file from the config repo's branch at the time of the
//! first deploy; later deploys upgrade the service and never read it again (Rancher is
//! then where the service's settings live, as with the Jenkins plugin).

use super::{RancherTarget, classify, id_of, wait_for, wait_healthy};
use crate::{Deploy, DeployError, Failure, Outcome};
use ferry_docker::labels::Deployed;
use ferry_rancher::{Api, ApiError, LaunchFile, launch_path};
use ferry_shared::order::next_mark;
use serde_json::json;
use std::time::Duration;

pub(super) async fn create(
    t: &RancherTarget<'_>,
    api: &Api,
    d: &Deploy<'_>,
) -> Result<Outcome, DeployError> {
    let file = match launch_file(t).await? {
        Ok(file) => file,
        Err(failure) => return Ok(Outcome::Failed(failure)),
    };
    let (stack_name, service_name) = t.config.names(t.project, t.environment);
    let stack = match api.find_stack(&stack_name).await {
        Ok(Some(stack)) => stack,
        Ok(None) => match api.create_stack(&stack_name).await {
            Ok(stack) => {
                tracing::info!(stack = stack_name, "created the Rancher stack");
                stack
            }
            Err(e) => return refused_or_retry(e, &format!("creating stack {stack_name}")),
        },
        Err(e) => return refused_or_retry(e, "reading the stacks"),
    };
    let labels = Deployed {
        image: d.image,
        revision: d.revision,
        run_id: d.run_id,
        mark: next_mark(None, d.order, d.resets_mark),
        previous: None,
    }
    .labels();
    let body = json!({
        "name": service_name, "stackId": id_of(&stack), "scale": file.scale,
        "startOnCreate": true, "launchConfig": file.launch_config(d.image, labels),
    });
    let service = match api.create_service(body).await {
        Ok(service) => service,
        Err(e) => return refused_or_retry(e, &format!("creating service {service_name}")),
    };
    let id = id_of(&service);
    tracing::info!(
        service = id,
        scale = file.scale,
        "created the Rancher service"
    );
    let timeout = Duration::from_secs(t.config.timeout_secs);
    let settled = match wait_for(api, &id, &["active"], timeout).await {
        Ok(_) if file.has_health_check() => wait_healthy(api, &id, timeout).await,
        Ok(_) => Ok(()),
        Err(why) => Err(why),
    };
    match settled {
        Ok(()) => Ok(Outcome::Succeeded {
            previous_image: None,
            previous_revision: None,
            hosts: vec![],
        }),
        Err(why) => Ok(Outcome::Failed(Failure::RancherCreated {
            service: t.name(),
            why,
        })),
    }
}

/// The project's launch file for this environment, read from its config repo's branch:
/// a failure a person must fix when there is none or it is wrong.
async fn launch_file(t: &RancherTarget<'_>) -> Result<Result<LaunchFile, Failure>, DeployError> {
    let file = launch_path(t.environment);
    let missing = |why: String| {
        Ok(Err(Failure::NoLaunchFile {
            service: t.name(),
            file: file.clone(),
            why,
        }))
    };
    let Some(repo) = t
        .cfg
        .projects
        .get(t.project)
        .and_then(|p| p.config_repo.as_ref())
    else {
        return missing(format!("project {} has no config_repo", t.project));
    };
    let b = &t.cfg.build;
    let dir = ferry_config_repo::working_copy(b, t.project, "updater-config");
    let checkout =
        ferry_config_repo::checkout(&dir, repo, Duration::from_secs(b.timeout_secs), None)
            .await
            .map_err(|e| DeployError::ConfigRepo(e.to_string()))?;
    let text = match std::fs::read_to_string(checkout.root.join(&file)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return missing(format!(
                "the config repo's branch {} has no {file} in its folder for the project",
                repo.branch
            ));
        }
        Err(e) => return missing(format!("{file} cannot be read: {e}")),
    };
    Ok(
        LaunchFile::parse(&text).map_err(|source| Failure::LaunchFile {
            file,
            commit: checkout.commit,
            source,
        }),
    )
}

/// Rancher's refusal of what Ferry asked it to create (a launch file field it rejects)
/// is a failure with its reason; `NotUnique` means someone created it meanwhile, so
/// the next attempt finds it.
fn refused_or_retry(e: ApiError, doing: &str) -> Result<Outcome, DeployError> {
    if let ApiError::Status { status, code, .. } = &e
        && status.as_u16() == 422
        && code != "NotUnique"
    {
        return Ok(Outcome::Failed(Failure::RancherRefused {
            doing: doing.to_owned(),
            source: e,
        }));
    }
    classify(e, doing).map(Outcome::Failed)
}

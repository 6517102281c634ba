//! `POST /api/projects/{project}/rollback` and `/deploy`: start a run by hand.
//!
//! A rollback goes through the same serialized deploy path as everything else, as an
//! explicit rollback (allowed to go backwards). Without `to` it asks for "what ran
//! before", which the updater reads from the environment under the deploy lock. With
//! `to`, the revision's image is found by digest (in the run history, else by tag in
//! the registry) and deployed without a build; if the registry no longer has it, the
//! revision is rebuilt by a run that deploys only to that environment.

use super::{ApiError, Operator, parse_body};
use crate::App;
use crate::registry::{ImageRef, Registry};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_shared::config::ProjectConfig;
use ferry_shared::event::{DeployRequested, Envelope, Event, SourceChanged};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    to: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    #[serde(default)]
    revision: String,
    #[serde(default)]
    message: Option<String>,
}

fn project<'a>(app: &'a App, name: &str) -> Result<&'a ProjectConfig, ApiError> {
    app.cfg
        .projects
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("project `{name}` is not configured")))
}

async fn publish(app: &App, event: &Envelope) -> Result<(), ApiError> {
    app.publisher.publish(event).await.map_err(|e| {
        ApiError::unavailable(format!(
            "the request could not be stored, nothing was started; try again: {e}"
        ))
    })
}

pub async fn rollback(
    State(app): State<Arc<App>>,
    Operator(by): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RollbackBody = parse_body(&body)?;
    let proj = project(&app, &name)?;
    let env = body.environment.trim();
    if !proj.environments.iter().any(|e| e == env) {
        return Err(ApiError::bad_request(format!(
            "`{env}` is not an environment of {name}; use one of {:?}",
            proj.environments
        )));
    }
    let to = body.to.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let (image, revision) = match to {
        None => (String::new(), String::new()),
        Some(rev) => match find_image(&app, &name, proj, rev).await? {
            Some(image) => (image, rev.to_owned()),
            None => return rebuild(&app, &name, proj, env, rev, &by).await,
        },
    };
    let mut event = Envelope::new_run(
        name.clone(),
        Event::DeployRequested(DeployRequested {
            revision: revision.clone(),
            image: image.clone(),
            reason: "rollback".into(),
            requested_by: Some(by.clone()),
        }),
    );
    event.environment = Some(env.to_owned());
    publish(&app, &event).await?;
    tracing::info!(run_id = %event.run_id, project = %name, environment = env, by, "rollback requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": event.run_id,
            "project": name,
            "environment": env,
            "to": if revision.is_empty() { "previous".to_owned() } else { revision },
            "image": (!image.is_empty()).then_some(image),
            "rebuild": false,
        })),
    ))
}

/// The image of `revision`, by digest, if the registry still has it.
async fn find_image(
    app: &App,
    name: &str,
    proj: &ProjectConfig,
    revision: &str,
) -> Result<Option<String>, ApiError> {
    let known = app.runs.pushed_image(name, revision);
    let Some(reg_cfg) = &app.cfg.registry else {
        // Without registry access, trust the history.
        return Ok(known);
    };
    let registry = Registry::new(reg_cfg);
    let failed = |e: String| ApiError::unavailable(format!("cannot ask the registry: {e}"));
    if let Some(image) = known {
        let r = ImageRef::parse(&reg_cfg.address, &image);
        let reference = r.digest.clone().or(r.tag.clone()).unwrap_or_default();
        return Ok(registry
            .digest(&r.name, &reference)
            .await
            .map_err(failed)?
            .map(|_| image));
    }
    // Not in the history (older than it keeps): look for the revision's tag.
    let tags = registry.tags(&proj.image).await.map_err(failed)?;
    let mut candidates: Vec<&String> = tags
        .iter()
        .filter(|t| crate::registry::tag_of_revision(t, revision))
        .collect();
    candidates.sort();
    // A plain `<revision>` tag, else the config overlay sorted last.
    let Some(tag) = candidates
        .iter()
        .find(|t| **t == revision)
        .or(candidates.last())
    else {
        return Ok(None);
    };
    Ok(registry
        .digest(&proj.image, tag)
        .await
        .map_err(failed)?
        .map(|digest| format!("{}/{}:{tag}@{digest}", reg_cfg.address, proj.image)))
}

async fn rebuild(
    app: &App,
    name: &str,
    proj: &ProjectConfig,
    env: &str,
    revision: &str,
    by: &str,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut event = Envelope::new_run(
        name.to_owned(),
        Event::SourceChanged(SourceChanged {
            source: "manual".into(),
            repository: proj.source.public_url(),
            reference: None,
            revision: revision.to_owned(),
            author: Some(by.to_owned()),
            message: Some(format!("rebuild of revision {revision} to roll {env} back")),
            changed_paths: vec![],
        }),
    );
    event.rollback_to = Some(env.to_owned());
    publish(app, &event).await?;
    let why = format!(
        "the image of revision {revision} is gone from the registry: rebuilding it from revision {revision}, then deploying it to {env} only"
    );
    tracing::info!(run_id = %event.run_id, project = name, environment = env, by, "{why}");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": event.run_id,
            "project": name,
            "environment": env,
            "to": revision,
            "rebuild": true,
            "note": why,
        })),
    ))
}

pub async fn deploy(
    State(app): State<Arc<App>>,
    Operator(by): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: DeployBody = parse_body(&body)?;
    let proj = project(&app, &name)?;
    let revision = body.revision.trim();
    if revision.is_empty() || revision == "0" {
        return Err(ApiError::bad_request("revision must not be empty or zero"));
    }
    let event = Envelope::new_run(
        name.clone(),
        Event::SourceChanged(SourceChanged {
            source: "manual".into(),
            repository: proj.source.public_url(),
            reference: None,
            revision: revision.to_owned(),
            author: Some(by.clone()),
            message: body
                .message
                .or_else(|| Some(format!("deployed by hand by {by}"))),
            changed_paths: vec![],
        }),
    );
    publish(&app, &event).await?;
    tracing::info!(run_id = %event.run_id, project = %name, revision, by, "run started by hand");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": event.run_id, "project": name, "revision": revision })),
    ))
}

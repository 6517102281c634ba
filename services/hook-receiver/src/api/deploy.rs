//! `POST /api/projects/{project}/rollback` and `/deploy`: start a run by hand.
//!
//! A rollback goes through the same serialized deploy path as everything else, as an
//! explicit rollback (allowed to go backwards). Without `to` it asks for "what ran
//! before", which the updater reads from the environment under the deploy lock. With
//! `to`, the revision's image is deployed at once only if the run history shows it
//! deployed in that environment before (`deploy.succeeded` there) and the registry
//! still has it: an image that was only pushed may be waiting for approval, have been
//! rejected or have failed an earlier environment's tests. Any other revision goes
//! through the environments before that one and their tests and approvals, like any
//! run (the builder reuses the revision's image when it has it, else rebuilds it),
//! then rolls it back (see `gate_override` for the recorded way around that).
//!
//! A rollback needs `rollback` on the project and environment; a deploy needs
//! `deploy` on the project and on every environment the run enters without an
//! approval. Both record the operator as who started the run.

use super::{ApiError, Operator, parse_body};
use crate::App;
use crate::registry::{ImageRef, Registry};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_shared::config::ProjectConfig;
use ferry_shared::config::operators::Action;
use ferry_shared::event::{DeployRequested, Envelope, Event, GateOverride, SourceChanged, Starter};
use ferry_shared::revision::Revision;
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
    /// Send a rebuilt revision straight to `environment`, skipping the environments
    /// before it and their tests (needs `approve` there, and a `reason`).
    #[serde(default)]
    skip_gate: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Longest recorded reason for skipping the gate.
const MAX_REASON_CHARS: usize = 500;

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

/// The operator's override of the test gate, if they asked for one: only someone who
/// may approve `env` may give it, never where `env` requires another approver (it
/// would be their own approval of their own rollback), and always with a reason.
fn gate_override(
    app: &App,
    op: &Operator,
    project: &str,
    env: &str,
    body: &RollbackBody,
) -> Result<Option<GateOverride>, ApiError> {
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if !body.skip_gate {
        return match reason {
            Some(_) => Err(ApiError::bad_request(
                "`reason` goes with `\"skip_gate\": true` (ferry rollback --skip-gate --reason ...)",
            )),
            None => Ok(None),
        };
    }
    let Some(reason) = reason else {
        return Err(ApiError::bad_request(
            "skipping the test gate needs a `reason`, recorded in the run's events (ferry rollback --skip-gate --reason \"...\")",
        ));
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    op.allow(Action::Approve, project, Some(env)).map_err(|e| {
        ApiError(
            e.0,
            format!("skipping the test gate needs `approve` in {env}: {}", e.1),
        )
    })?;
    if app
        .cfg
        .environments
        .get(env)
        .is_some_and(|e| e.require_other_approver)
    {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "environments.{env}.require_other_approver is set: skipping the test gate would be your own approval of your own rollback; roll back without skip_gate (the rebuilt revision then passes the environments before {env} and their tests)"
            ),
        ));
    }
    Ok(Some(GateOverride {
        by: op.name().to_owned(),
        reason: reason.to_owned(),
    }))
}

pub async fn rollback(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RollbackBody = parse_body(&body)?;
    op.0.can(Action::Rollback)?;
    let proj = project(&app, &name)?;
    let env = body.environment.trim();
    if !proj.environments.iter().any(|e| e == env) {
        return Err(ApiError::bad_request(format!(
            "`{env}` is not an environment of {name}; use one of {:?}",
            proj.environments
        )));
    }
    op.allow(Action::Rollback, &name, Some(env))?;
    let gate = gate_override(&app, &op, &name, env, &body)?;
    let by = op.name().to_owned();
    let to = body.to.as_deref().map(str::trim).filter(|t| !t.is_empty());
    // Images are tagged by exact revision: `to` is an SVN number or a full commit id.
    let to = to
        .map(|t| Revision::parse_exact(proj.source.kind.as_str(), t).map(|r| r.to_string()))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("`to`: {e}")))?;
    let (image, revision) = match to.as_deref() {
        None => (String::new(), String::new()),
        Some(rev) => match deployed_image(&app, &name, env, rev).await? {
            Deployed::Here(image) => (image, rev.to_owned()),
            why => {
                let why = why.explain(env, rev);
                return rebuild(&app, &name, proj, env, rev, &by, gate, why).await;
            }
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
    event.started_by = Some(Starter::Operator(by.clone()));
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
            // Nothing to skip: the image already ran in this environment.
            "gate_skipped": false,
        })),
    ))
}

/// Whether `revision`'s image may go back into an environment at once.
enum Deployed {
    /// It ran there before (a `deploy.succeeded` in the run history) and the
    /// registry still has it.
    Here(String),
    /// It ran there, but the registry no longer has it.
    Gone,
    /// The history shows no deploy of it there (never, or older than it keeps).
    NotThere,
}

impl Deployed {
    fn explain(&self, env: &str, revision: &str) -> String {
        match self {
            Deployed::Here(_) => String::new(),
            Deployed::Gone => {
                format!(
                    "the image of revision {revision} is gone from the registry: rebuilding it from revision {revision}"
                )
            }
            Deployed::NotThere => format!(
                "revision {revision} has no deploy in {env} in the run history (never deployed there, or older than the history keeps), so it is not rolled back at once: building it (or reusing its image)"
            ),
        }
    }
}

/// The image of `revision` that already ran in `env`, by digest, if the registry
/// still has it.
async fn deployed_image(
    app: &App,
    name: &str,
    env: &str,
    revision: &str,
) -> Result<Deployed, ApiError> {
    let Some(image) = app.runs.deployed_image(name, env, revision) else {
        return Ok(Deployed::NotThere);
    };
    let Some(reg_cfg) = &app.cfg.registry else {
        // Without registry access, trust the history.
        return Ok(Deployed::Here(image));
    };
    let registry = Registry::new(reg_cfg);
    let r = ImageRef::parse(&reg_cfg.address, &image);
    let reference = r.digest.clone().or(r.tag.clone()).unwrap_or_default();
    let found = registry
        .digest(&r.name, &reference)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot ask the registry: {e}")))?;
    Ok(match found {
        Some(_) => Deployed::Here(image),
        None => Deployed::Gone,
    })
}

#[allow(clippy::too_many_arguments)]
async fn rebuild(
    app: &App,
    name: &str,
    proj: &ProjectConfig,
    env: &str,
    revision: &str,
    by: &str,
    gate: Option<GateOverride>,
    why: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut event = Envelope::new_run(
        name.to_owned(),
        Event::SourceChanged(SourceChanged {
            source: "manual".into(),
            repository: proj.source.public_url(),
            reference: None,
            revision: revision.to_owned(),
            author: Some(by.to_owned()),
            message: Some(format!("revision {revision} on its way to roll {env} back")),
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    );
    event.rollback_to = Some(env.to_owned());
    event.started_by = Some(Starter::Operator(by.to_owned()));
    event.gate_override.clone_from(&gate);
    let through: Vec<&String> = match &gate {
        Some(_) => vec![],
        None => proj.environments.iter().take_while(|e| *e != env).collect(),
    };
    publish(app, &event).await?;
    let path = match (&gate, through.is_empty()) {
        (Some(g), _) => format!(
            "then deploying it to {env} only: the test gate skipped by {}: {}",
            g.by, g.reason
        ),
        (None, true) => format!("then deploying it to {env}"),
        (None, false) => format!(
            "then through {} and its tests (and any approval) before {env}",
            through
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let why = format!("{why}, {path}");
    tracing::info!(run_id = %event.run_id, project = name, environment = env, by, "{why}");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": event.run_id,
            "project": name,
            "environment": env,
            "to": revision,
            "rebuild": true,
            "through": through,
            "gate_skipped": gate.is_some(),
            "note": why,
        })),
    ))
}

/// 403 unless `op` may deploy `name` and into every environment its run enters
/// without an approval (the later ones are the approvers' to let it into).
fn may_deploy(app: &App, op: &Operator, name: &str, proj: &ProjectConfig) -> Result<(), ApiError> {
    op.allow(Action::Deploy, name, None)?;
    let automatic = proj.environments.iter().take_while(|e| {
        !app.cfg
            .environments
            .get(*e)
            .is_some_and(|c| c.needs_approval())
    });
    for env in automatic {
        op.allow(Action::Deploy, name, Some(env))?;
    }
    Ok(())
}

pub async fn deploy(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: DeployBody = parse_body(&body)?;
    op.0.can(Action::Deploy)?;
    let proj = project(&app, &name)?;
    may_deploy(&app, &op, &name, proj)?;
    let by = op.name().to_owned();
    let revision = body.revision.trim();
    if revision.is_empty() {
        return Err(ApiError::bad_request("revision must not be empty"));
    }
    // An SVN number, or for git a full commit id or a branch/tag the builder resolves.
    let revision = &Revision::parse(proj.source.kind.as_str(), revision)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_string();
    let mut event = Envelope::new_run(
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
            config_change: None,
            committed: None,
        }),
    );
    event.started_by = Some(Starter::Operator(by.clone()));
    publish(&app, &event).await?;
    tracing::info!(run_id = %event.run_id, project = %name, revision, by, "run started by hand");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": event.run_id, "project": name, "revision": revision })),
    ))
}

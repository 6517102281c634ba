//! `POST /api/projects/{project}/scale` (`ferry scale`): how many instances an
//! environment runs. The request becomes `scale.requested.<env>`, which the updater
//! carries out under the environment's deploy lock (never in the middle of a deploy),
//! recording the operator as who asked. Needs `scale` on the project and environment.

use super::{ApiError, Operator, parse_body};
use crate::App;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_shared::config::operators::Action;
use ferry_shared::event::{Envelope, Event, ScaleRequested, Starter};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    to: Option<u32>,
}

pub async fn scale(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ScaleBody = parse_body(&body)?;
    op.0.can(Action::Scale)?;
    let proj = app
        .cfg
        .projects
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("project `{name}` is not configured")))?;
    let env = body.environment.trim();
    if !proj.environments.iter().any(|e| e == env) {
        return Err(ApiError::bad_request(format!(
            "`{env}` is not an environment of {name}; use one of {:?}",
            proj.environments
        )));
    }
    op.allow(Action::Scale, &name, Some(env))?;
    let to = match body.to {
        Some(to) if (1..=ScaleRequested::MAX).contains(&to) => to,
        other => {
            return Err(ApiError::bad_request(format!(
                "`to` must be a number of instances from 1 to {}, not {}",
                ScaleRequested::MAX,
                other.map_or("missing".to_owned(), |n| n.to_string())
            )));
        }
    };
    let by = op.name().to_owned();
    let mut event = Envelope::new_run(
        name.clone(),
        Event::ScaleRequested(ScaleRequested {
            to,
            requested_by: Some(by.clone()),
        }),
    );
    event.environment = Some(env.to_owned());
    event.started_by = Some(Starter::Operator(by.clone()));
    app.publisher.publish(&event).await.map_err(|e| {
        ApiError::unavailable(format!(
            "the request could not be stored, nothing was changed; try again: {e}"
        ))
    })?;
    tracing::info!(run_id = %event.run_id, project = %name, environment = env, to, by, "scale requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": event.run_id, "project": name, "environment": env, "to": to })),
    ))
}

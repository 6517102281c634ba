//! `POST /api/runs/{run}/approve` and `/reject`: answer a run held for approval.
//! Taking the hold off RabbitMQ is what makes the answer exclusive: of two operators
//! (or an operator and the expiry), only the one that got the message decides.
//!
//! Approving and rejecting both need `approve` on the run's project and the held
//! environment. The scope is checked before the hold is touched, from the run history
//! and by taking holds only in the operator's environments; it is checked again on the
//! held request itself, which also says who started the run: with
//! `require_other_approver` they cannot approve it (they may still reject it).

use super::{ApiError, Operator, parse_body, parse_run};
use crate::App;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use ferry_shared::bus::hold;
use ferry_shared::config::operators::{Action, Denied};
use ferry_shared::event::{Decision, Event};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    comment: Option<String>,
}

pub async fn approve(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(run): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&app, op, &run, &body, true).await
}

pub async fn reject(
    State(app): State<Arc<App>>,
    op: Operator,
    Path(run): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&app, op, &run, &body, false).await
}

/// The own-run rule, from the run history, before the hold is touched: taking a hold
/// and putting it back counts as a delivery, and quorum queues end a message after
/// their delivery limit, so repeated refused self-approvals must not touch it. The
/// held request stays the authority (checked again after taking it).
fn own_run_known(app: &App, op: &Operator, run: &crate::runs::Run) -> Result<(), ApiError> {
    let held = run
        .events
        .iter()
        .rev()
        .find(|l| l.kind == "approval.requested")
        .and_then(|l| l.environment.as_deref());
    if let Some(env) = held
        && app
            .cfg
            .environments
            .get(env)
            .is_some_and(|e| e.require_other_approver)
    {
        op.0.own_run(env, run.started_by.as_ref())?;
    }
    Ok(())
}

async fn decide(
    app: &App,
    op: Operator,
    run: &str,
    body: &[u8],
    approved: bool,
) -> Result<Json<Value>, ApiError> {
    let run_id = parse_run(run)?;
    let answer: Answer = parse_body(body)?;
    op.0.can(Action::Approve)?;
    if let Some(known) = app.runs.get(run_id) {
        op.allow(Action::Approve, &known.project, None)?;
        if approved {
            own_run_known(app, &op, &known)?;
        }
    }
    let (environments, elsewhere): (Vec<&str>, Vec<&str>) = app
        .cfg
        .environments
        .keys()
        .map(String::as_str)
        .partition(|e| op.0.environments.allows(e));
    let taken = match hold::take(&app.cfg.broker, run_id, &environments).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            if let Ok(Some(environment)) = hold::held_in(&app.cfg.broker, run_id, &elsewhere).await
            {
                return Err(Denied::Environment {
                    operator: op.name().to_owned(),
                    action: Action::Approve,
                    environment,
                    scope: op.0.environments.to_string(),
                }
                .into());
            }
            return Err(ApiError(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "run {run_id} is not waiting for approval (already approved, rejected or expired, or never held); see `ferry runs`"
                ),
            ));
        }
        Err(e) => {
            return Err(ApiError::unavailable(format!(
                "cannot read the approval hold: {e}"
            )));
        }
    };
    let request = match &taken.request.event {
        Event::ApprovalRequested(r) => r.clone(),
        other => {
            let kind = other.kind();
            taken.release().await;
            return Err(ApiError::unavailable(format!(
                "the hold of run {run_id} holds a `{kind}` event, not an approval request"
            )));
        }
    };
    // The held request is the authority on project, environment and who started it.
    let held_env = taken.request.environment.clone().unwrap_or_default();
    let own_run_rule = approved
        && app
            .cfg
            .environments
            .get(&held_env)
            .is_some_and(|e| e.require_other_approver);
    let refused =
        op.0.allow(Action::Approve, &taken.request.project, Some(&held_env))
            .and_then(|()| match own_run_rule {
                true => op.0.own_run(&held_env, taken.request.started_by.as_ref()),
                false => Ok(()),
            });
    if let Err(denied) = refused {
        taken.release().await;
        tracing::info!(%run_id, operator = op.name(), "decision refused: {denied}");
        return Err(denied.into());
    }
    let by = op.name().to_owned();
    let decision = Decision {
        revision: request.revision.clone(),
        image: request.image.clone(),
        by: by.clone(),
        at: chrono::Utc::now(),
        comment: answer.comment,
    };
    let env = taken.request.environment.clone();
    let event = taken.request.follow(
        if approved {
            Event::ApprovalGranted(decision)
        } else {
            Event::ApprovalRejected(decision)
        },
        env.as_deref(),
    );
    if let Err(e) = app.publisher.publish(&event).await {
        taken.release().await;
        return Err(ApiError::unavailable(format!(
            "the decision could not be recorded, the run still waits; try again: {e}"
        )));
    }
    if let Err(e) = taken.settle().await {
        // Published but not settled: the hold comes back, and answering it again
        // publishes the same event id, which consumers recognise.
        tracing::warn!(%run_id, "approval hold not settled: {e}");
    }
    let decision = if approved { "approved" } else { "rejected" };
    tracing::info!(%run_id, by, environment = ?env, "run {decision}");
    Ok(Json(json!({
        "run_id": run_id,
        "project": event.project,
        "environment": env,
        "revision": request.revision,
        "decision": decision,
        "by": by,
        "event_id": event.event_id,
    })))
}

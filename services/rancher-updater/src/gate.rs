//! The approval gate: a run that passed its tests waits here for `ferry approve` before
//! it is deployed into an environment with `approval = "manual"`. The hold itself
//! lives in RabbitMQ (see `ferry_shared::bus::hold`); this side places it and turns an
//! expired one into `approval.expired`.

use crate::UpdaterError;
use ferry_shared::bus::{Context, hold};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{ApprovalRequested, Decision, Envelope, Event};
use std::time::Duration;

pub async fn place(
    cfg: &FerryConfig,
    ctx: &Context,
    event: &Envelope,
    request: ApprovalRequested,
    environment: &str,
    timeout: Duration,
) -> Result<(), UpdaterError> {
    let requested = event.follow(Event::ApprovalRequested(request), Some(environment));
    // The hold first: an announced approval must be decidable.
    hold::place(&cfg.broker, &requested, timeout)
        .await
        .map_err(|e| UpdaterError::Hold(e.to_string()))?;
    tracing::info!(environment, run_id = %event.run_id, "held for approval");
    Ok(ctx.emit(&requested).await?)
}

/// The hold of `event` (its `approval.requested`) ran out unanswered.
pub async fn expired(
    ctx: &Context,
    event: &Envelope,
    request: &ApprovalRequested,
) -> Result<(), UpdaterError> {
    let decision = Decision {
        revision: request.revision.clone(),
        image: request.image.clone(),
        by: "ferry".into(),
        at: chrono::Utc::now(),
        comment: Some(format!(
            "nobody approved or rejected it before {}",
            request.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
        )),
    };
    tracing::info!(environment = ?event.environment, run_id = %event.run_id, "approval expired");
    let expired = event.follow(
        Event::ApprovalExpired(decision),
        event.environment.as_deref(),
    );
    Ok(ctx.emit(&expired).await?)
}

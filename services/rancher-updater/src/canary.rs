//! A canary held at a step for an operator (`approve = true`): the deploy ends there with
//! the split in place and an approval hold, as a promotion's would. `ferry approve`
//! delivers the deploy again, which finds the split and goes on; a rejection, or a hold
//! that runs out, sends all traffic back to the old release.

use crate::{Stage, UpdaterError, gate, held};
use ferry_shared::bus::{Context, Lock};
use ferry_shared::event::{ApprovalRequested, Envelope, Event};
use ferry_targets::Environment;
use std::time::Duration;

impl Stage {
    pub(crate) async fn hold_canary(
        &self,
        ctx: &Context,
        event: &Envelope,
        (env, revision, image): (&str, &str, &str),
        percent: u8,
    ) -> Result<(), UpdaterError> {
        let timeout = Duration::from_secs(
            self.cfg
                .environments
                .get(env)
                .map_or(24 * 3600, |e| e.approval_timeout_secs),
        );
        let request = ApprovalRequested {
            revision: revision.to_owned(),
            image: image.to_owned(),
            passed_in: match &event.event {
                Event::TestPassed(_) => event.environment.clone(),
                _ => None,
            },
            expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(timeout)
                    .unwrap_or_else(|_| chrono::Duration::days(36_500)),
            canary_percent: Some(percent),
        };
        tracing::info!(environment = env, percent, "canary held for approval");
        gate::place(&self.cfg, ctx, event, request, env, timeout).await
    }

    /// Under the deploy lock: a canary of `image` held in `env` goes back.
    pub(crate) async fn abandon(
        &self,
        event: &Envelope,
        env: &str,
        image: &str,
    ) -> Result<(), UpdaterError> {
        let Environment::Docker(target) = Environment::of(&self.cfg, &event.project, env)? else {
            return Ok(());
        };
        let lock_name = format!("deploy.{}.{env}", event.project);
        let contender = Lock::connect(&self.cfg.broker, &lock_name)
            .await
            .map_err(|e| UpdaterError::Lock(e.to_string()))?;
        let lock = held(contender, &event.project, env).await?;
        let found = target
            .abandon(image)
            .await
            .map_err(|source| UpdaterError::Running {
                environment: env.to_owned(),
                source: Box::new(source),
            })?;
        drop(lock);
        if found {
            tracing::info!(environment = env, run_id = %event.run_id, "the held canary went back to the old release");
        }
        Ok(())
    }
}

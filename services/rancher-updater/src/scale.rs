//! `scale.requested.<env>` (`ferry scale`): the environment runs that many instances
//! of what it runs now. It takes the environment's deploy lock, so a scale never runs
//! in the middle of a deploy, a rollback or another scale, and the deploy after it
//! keeps the new scale (each target reads it from Rancher or the hosts).

use crate::request::Scale;
use crate::{Stage, UpdaterError, held};
use ferry_shared::bus::{Context, Lock};
use ferry_shared::event::{Envelope, Event, ScaleRequested, ScaleSucceeded};
use ferry_targets::{Environment, ScaleOutcome, Target};

impl Stage {
    pub(crate) async fn scale(
        &self,
        ctx: &Context,
        event: &Envelope,
        s: Scale,
    ) -> Result<(), UpdaterError> {
        let env = s.environment.as_str();
        let refused = |why: String| UpdaterError::Refused {
            environment: env.to_owned(),
            why,
        };
        // Checked again here: whoever can publish on the broker is not trusted.
        if s.to == 0 || s.to > ScaleRequested::MAX {
            return Err(refused(format!(
                "cannot scale to {}: use 1 to {}",
                s.to,
                ScaleRequested::MAX
            )));
        }
        let project = ferry_shared::stage::project(&self.cfg, event)?;
        if !project.environments.iter().any(|e| e == env) {
            return Err(refused(format!(
                "`{env}` is not an environment of {}",
                event.project
            )));
        }
        let target = Environment::of(&self.cfg, &event.project, env)?;
        let lock_name = format!("deploy.{}.{env}", event.project);
        let contender = Lock::connect(&self.cfg.broker, &lock_name)
            .await
            .map_err(|e| UpdaterError::Lock(e.to_string()))?;
        let lock = held(contender, &event.project, env).await?;
        let outcome = target.scale(s.to).await;
        drop(lock);
        match outcome? {
            ScaleOutcome::Scaled { from, to } => {
                tracing::info!(environment = env, from, to, by = ?s.requested_by, "scaled");
                let done = Event::ScaleSucceeded(ScaleSucceeded {
                    from,
                    to,
                    requested_by: s.requested_by,
                });
                Ok(ctx.emit(&event.follow(done, Some(env))).await?)
            }
            ScaleOutcome::Failed(failure) => Err(UpdaterError::Failed {
                environment: env.to_owned(),
                why: format!("scaling to {}: {failure}", s.to),
            }),
        }
    }
}

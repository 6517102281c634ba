//! pusher: consumes `image.built`, pushes the image to the registry through the build
//! host's Docker Engine, and publishes `image.pushed` with `repository:tag@sha256:...`:
//! later stages deploy by digest only.
//!
//! A redelivered push is harmless: the registry already has the layers and answers
//! with the same digest. Registry down, 5xx and timeouts are retried with backoff;
//! refused credentials and unknown repositories fail at once (`push.failed`).

use bollard::query_parameters::PushImageOptionsBuilder;
use ferry_shared::bus::{Context, StageSpec};
use ferry_shared::config::{FerryConfig, HostFiles};
use ferry_shared::event::{Event, ImagePushed};
use ferry_shared::image_ref::ImageRefused;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{
    Disposition, Input, PublishFailed, PushInput, Received, StageError, StageHandler,
};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = PushInput::SERVICE;

pub fn spec() -> StageSpec {
    PushInput::spec()
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9603,
    prefetch: 4,
    handler_timeout_secs: 600,
    shutdown_grace_secs: 25,
    host_files: HostFiles::Skip,
};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "the registry refused the credentials of `{user}` for {image}: check registry.username and registry.password ({detail})"
    )]
    Auth {
        user: String,
        image: String,
        detail: String,
    },
    #[error(
        "the registry has no repository for {image} (create it, e.g. the Harbor project): {detail}"
    )]
    NotFound { image: String, detail: String },
    #[error("pushing {image} failed: {detail}")]
    Transient { image: String, detail: String },
    #[error("`{0}` is not `<registry>/<name>:<tag>`")]
    BadReference(String),
    /// The event names a build engine the configuration does not list: pushing from it
    /// would let whoever can publish `image.built` point the pusher at any engine.
    #[error(
        "image.built names build engine `{0}`, which is not in build.docker_hosts: nothing was pushed (list it there if it is a build host)"
    )]
    UnknownEngine(String),
    /// The event names an image this project may not push (see `image_ref::belongs_to`).
    #[error("not pushed: {0}")]
    Refused(#[from] ImageRefused),
    #[error(transparent)]
    Publish(#[from] PublishFailed),
}

impl StageError for PushError {
    fn disposition(&self) -> Disposition {
        match self {
            PushError::Transient { .. } | PushError::Publish(_) => Disposition::Retry,
            _ => Disposition::GiveUp,
        }
    }
}

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    /// Push `image` (`repo:tag`) from the build engine `engine`; its manifest digest.
    pub async fn push(&self, engine: &str, image: &str) -> Result<String, PushError> {
        let (repo, tag) = match image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') && !r.is_empty() => (r, t),
            _ => return Err(PushError::BadReference(image.to_owned())),
        };
        let transient = |detail: String| PushError::Transient {
            image: image.to_owned(),
            detail,
        };
        let docker = ferry_docker::connect(engine)
            .await
            .map_err(|e| transient(e.to_string()))?;
        let registry = self.cfg.registry.as_ref();
        let credentials = ferry_docker::registry_auth::credentials_for(&self.cfg, image);
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = docker.push_image(repo, Some(options), credentials);
        let mut digest = None;
        let deadline = Duration::from_secs(self.cfg.build.timeout_secs);
        let read = async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| e.to_string())?;
                if let Some(detail) = info.error_detail {
                    return Err(detail
                        .message
                        .unwrap_or_else(|| "unknown push error".into()));
                }
                // "<tag>: digest: sha256:<hex> size: <n>" closes a successful push.
                if let Some(d) = info
                    .status
                    .as_deref()
                    .and_then(|s| s.split("digest: ").nth(1))
                {
                    digest = d.split_whitespace().next().map(str::to_owned);
                }
            }
            Ok(())
        };
        match tokio::time::timeout(deadline, read).await {
            Err(_) => {
                return Err(transient(format!(
                    "no answer within {} s",
                    deadline.as_secs()
                )));
            }
            Ok(Err(detail)) => {
                return Err(classify(
                    image,
                    registry.map(|r| r.username.as_str()),
                    detail,
                ));
            }
            Ok(Ok(())) => {}
        }
        digest
            .filter(|d| d.starts_with("sha256:"))
            .ok_or_else(|| transient("the engine reported no digest".into()))
    }
}

fn classify(image: &str, user: Option<&str>, detail: String) -> PushError {
    let d = detail.to_ascii_lowercase();
    let image = image.to_owned();
    if d.contains("unauthorized")
        || d.contains("authentication required")
        || d.contains("denied")
        || d.contains("no basic auth credentials")
    {
        PushError::Auth {
            user: user.unwrap_or("(none)").to_owned(),
            image,
            detail,
        }
    } else if d.contains("name unknown")
        || d.contains("repository name not known")
        || d.contains("not found: repository")
    {
        PushError::NotFound { image, detail }
    } else {
        PushError::Transient { image, detail }
    }
}

impl StageHandler for Stage {
    type Input = PushInput;
    type Error = PushError;

    async fn run(&self, ctx: &Context, event: &Received<PushInput>) -> Result<(), PushError> {
        let PushInput::ImageBuilt(built) = &event.input;
        // The builder's broker user must not get another project's image (or an image
        // for another registry) pushed under this run's name.
        if let Err(refused) =
            ferry_shared::image_ref::belongs_to(&self.cfg, &event.project, &built.image)
        {
            tracing::warn!("image refused: {refused}");
            return Err(refused.into());
        }
        // The image is on the engine that built it (an older builder's: the first).
        let engines = self.cfg.build.engines();
        let engine = match built.build_host.as_deref() {
            None => engines[0],
            Some(e) if self.cfg.build.is_engine(e) => e,
            Some(e) => {
                let refused = PushError::UnknownEngine(e.chars().take(200).collect());
                tracing::warn!("{refused}");
                return Err(refused);
            }
        };
        let started = std::time::Instant::now();
        let digest = self.push(engine, &built.image).await.inspect_err(|e| {
            tracing::warn!("{e}");
        })?;
        tracing::info!(image = %built.image, %digest, %engine, "image pushed");
        let pushed = ImagePushed {
            docker_millis: Some(started.elapsed().as_millis() as u64),
            revision: built.revision.clone(),
            image: format!("{}@{digest}", built.image),
        };
        Ok(ctx
            .emit(&event.follow(Event::ImagePushed(pushed), None))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_answers_are_classified() {
        let auth = classify(
            "r/x:1",
            Some("u"),
            "unauthorized: authentication required".into(),
        );
        assert!(matches!(auth, PushError::Auth { .. }));
        assert_eq!(auth.disposition(), Disposition::GiveUp);
        let down = classify(
            "r/x:1",
            Some("u"),
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp: connection refused".into(),
        );
        assert_eq!(down.disposition(), Disposition::Retry);
        assert_eq!(
            classify(
                "r/x:1",
                None,
                "received unexpected HTTP status: 500 Internal Server Error".into()
            )
            .disposition(),
            Disposition::Retry
        );
    }
}

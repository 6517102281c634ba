//! builder: consumes `source.changed`, publishes `image.built` (or `build.failed`).
//!
//! Checks out the code at exactly the triggering revision and the project's config repo
//! at its latest commit, lays the config files over the code, and builds the image on
//! the build host's Docker Engine. The image is tagged `<registry>/<image>:<revision>`;
//! a rebuild of the same revision with a newer config commit gets
//! `<revision>-cfg<commit[..8]>`, so no tag is ever moved.

mod buildlog;
pub mod checkout;
mod context;
mod dockerignore;
pub mod engines;
mod error;
mod image;
mod lineage;
mod remote;

pub use buildlog::BuildLog;
pub use error::BuildError;

use checkout::Checkouts;
use ferry_config_repo::Overlay;
use ferry_shared::bus::{Context as BusContext, StageSpec};
use ferry_shared::config::{FerryConfig, HostFiles, ProjectConfig};
use ferry_shared::event::{Envelope, Event, ImageBuilt, SourceChanged};
use ferry_shared::order::RunOrder;
use ferry_shared::revision::CommitId;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{BuildInput, Input, Received, StageHandler};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SERVICE: &str = BuildInput::SERVICE;

pub fn spec() -> StageSpec {
    BuildInput::spec()
}

/// One build at a time per engine slot: builds are CPU- and disk-bound (the prefetch
/// defaults to `build.build_slots()`, see [`defaults`]); scale with engines or replicas.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9602,
    prefetch: 1,
    handler_timeout_secs: 1500,
    shutdown_grace_secs: 25,
    host_files: HostFiles::Skip,
};

pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
pub const LABEL_CREATED: &str = "org.opencontainers.image.created";
pub use ferry_docker::labels::{LABEL_CONFIG_COMMIT, LABEL_PROJECT, LABEL_RUN};

/// The builder's defaults for `cfg`: as many builds at once as the engines have slots.
pub fn defaults(cfg: &FerryConfig, d: ServiceDefaults) -> ServiceDefaults {
    ServiceDefaults {
        prefetch: cfg.build.build_slots().max(d.prefetch),
        ..d
    }
}

pub struct Stage {
    cfg: Arc<FerryConfig>,
    engines: engines::Engines,
    /// One build per project at a time in this process: they share a working copy.
    working_copies: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self {
            engines: engines::Engines::new(&cfg.build),
            cfg,
            working_copies: Default::default(),
        }
    }

    /// The project's working copies, held for the whole build.
    async fn working_copy(&self, project: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .working_copies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(project.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Build on one engine; an engine that fails is added to `tried` (and set aside).
    async fn build(
        &self,
        event: &Envelope,
        project: &ProjectConfig,
        source: &SourceChanged,
        tried: &mut Vec<usize>,
    ) -> Result<(ImageBuilt, RunOrder), BuildError> {
        let b = &self.cfg.build;
        let timeout = Duration::from_secs(b.timeout_secs);
        let checkouts = Checkouts { cfg: b, timeout };
        let started = Instant::now();
        // The code, the config repo and the engine are independent of each other:
        // fetched and connected at once (each in its own folder), not one after another.
        let code = async {
            let (dir, revision) = checkouts
                .code(&event.project, &project.source, source)
                .await?;
            Ok::<_, BuildError>((dir, revision, started.elapsed()))
        };
        let config = async {
            let overlay = self.config_overlay(event, project, source, timeout).await?;
            Ok::<_, BuildError>((overlay, started.elapsed()))
        };
        let engine = self.engines.lease(&event.project, tried);
        let ((code, revision, code_took), ((overlay, config_commit), config_took), lease) =
            tokio::try_join!(code, config, engine)?;
        let docker = &lease.docker;
        let on_engine = |r: Result<_, BuildError>, tried: &mut Vec<usize>| {
            if let Err(BuildError::Engine(_)) = &r {
                self.engines.failed(&lease);
                tried.push(lease.index);
            }
            r
        };
        // From here on the revision is the commit checked out (a name resolved).
        let source = &SourceChanged {
            revision,
            ..source.clone()
        };
        let order = lineage::order(&project.source, &code, source, timeout).await?;
        let mut secrets = self.known_secrets();
        secrets.extend(overlay.secrets);
        let context = context::Context::assemble(&code, overlay.files, &project.dockerfile)?;
        tracing::info!(
            code_ms = code_took.as_millis() as u64,
            config_ms = config_took.as_millis() as u64,
            ready_ms = started.elapsed().as_millis() as u64,
            files = context.len(),
            "sources ready"
        );
        let built = |image, docker_millis, build_log| ImageBuilt {
            docker_millis,
            build_host: Some(lease.url.clone()),
            revision: source.revision.clone(),
            image,
            config_commit: config_commit.clone(),
            build_log,
        };
        let tag = match self
            .tag(docker, project, &source.revision, config_commit.as_ref())
            .await
        {
            Tag::Built(tag) => {
                // Built before (a redelivery): the image is already what this run needs.
                tracing::info!(%tag, "image already built for this revision and config commit");
                return Ok((built(tag, None, None), order));
            }
            Tag::New(tag) => tag,
        };
        let run_id = event.run_id.to_string();
        let req = image::Request {
            tag: &tag,
            dockerfile: &project.dockerfile,
            args: build_args(&run_id, &source.revision, config_commit.as_ref()),
            labels: labels(event, project, &source.revision, config_commit.as_ref()),
            network: &b.network,
        };
        let (millis, log_path) = on_engine(
            self.run_engine(docker, context, req, &run_id, secrets)
                .await,
            tried,
        )?;
        tracing::info!(
            engine = %lease.url,
            engine_ms = millis,
            total_ms = started.elapsed().as_millis() as u64,
            "engine done"
        );
        Ok((built(tag, Some(millis), log_path), order))
    }

    /// The project's config repo at its latest commit: what it lays over the code, and
    /// the commit; nothing without a config repo.
    async fn config_overlay(
        &self,
        event: &Envelope,
        project: &ProjectConfig,
        source: &SourceChanged,
        timeout: Duration,
    ) -> Result<(Overlay, Option<String>), BuildError> {
        let Some(repo) = &project.config_repo else {
            return Ok((Overlay::default(), None));
        };
        let dir = ferry_config_repo::working_copy(&self.cfg.build, &event.project, "config");
        // A config change's run: its commit must be on the branch (events are input too).
        let pushed = match &source.config_change {
            Some(c) => Some(CommitId::parse(&c.commit).map_err(|e| {
                BuildError::Refused(format!("the run's config commit: {e}; nothing was built"))
            })?),
            None => None,
        };
        let checkout = ferry_config_repo::checkout(&dir, repo, timeout, pushed.as_ref()).await?;
        let overlay = ferry_config_repo::overlay(&checkout.root, repo, &project.dockerfile)?;
        Ok((overlay, Some(checkout.commit)))
    }

    /// What the build log must never show: the SVN and registry passwords and every
    /// configured secret, the tokens in repository URLs included (a failing `git clone`
    /// quotes its URL).
    fn known_secrets(&self) -> Vec<String> {
        let b = &self.cfg.build;
        let mut secrets: Vec<String> = [
            b.svn_password.as_ref(),
            self.cfg.registry.as_ref().map(|r| &r.password),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().clone())
        .collect();
        secrets.extend(self.cfg.secret_values());
        secrets
    }

    /// `<registry>/<image>:<revision>`, unless that tag holds an image built with another
    /// config commit: then `<revision>-cfg<commit[..8]>`, so no tag is ever moved.
    async fn tag(
        &self,
        docker: &bollard::Docker,
        project: &ProjectConfig,
        revision: &str,
        config_commit: Option<&String>,
    ) -> Tag {
        let registry = self
            .cfg
            .registry
            .as_ref()
            .map(|r| r.address.as_str())
            .unwrap_or("localhost");
        let repo_name = format!("{registry}/{}", project.image);
        let tag = format!("{repo_name}:{revision}");
        let Some(existing) = image::labels(docker, &tag).await else {
            return Tag::New(tag);
        };
        if existing.get(LABEL_CONFIG_COMMIT) == config_commit {
            return Tag::Built(tag);
        }
        let short: String = config_commit
            .map_or("none", String::as_str)
            .chars()
            .take(8)
            .collect();
        Tag::New(format!("{repo_name}:{revision}-cfg{short}"))
    }

    /// Build `req` on the engine within `build.timeout_secs`, its log (scrubbed of
    /// `secrets`) stored under `build.log_dir`: the milliseconds inside Docker and where
    /// the log is. A failed step's message says where to read the whole log.
    async fn run_engine(
        &self,
        docker: &bollard::Docker,
        context: context::Context,
        req: image::Request<'_>,
        run_id: &str,
        secrets: Vec<String>,
    ) -> Result<(u64, Option<String>), BuildError> {
        let b = &self.cfg.build;
        let mut log = BuildLog::new(b.max_log_bytes, secrets);
        log.push(&format!(
            "ferry: building {} from {} files\n",
            req.tag,
            context.len()
        ));
        let docker_started = std::time::Instant::now();
        let timeout = Duration::from_secs(b.timeout_secs);
        let result =
            match tokio::time::timeout(timeout, image::build(docker, context, req, &mut log)).await
            {
                Ok(r) => r,
                Err(_) => Err(BuildError::Timeout(b.timeout_secs)),
            };
        let stored = BuildLog::store(&log.finish(), &b.log_dir, run_id);
        let log_path = stored.as_ref().map(|p| p.display().to_string()).ok();
        match result {
            Ok(()) => Ok((docker_started.elapsed().as_millis() as u64, log_path)),
            Err(BuildError::StepFailed { step, tail }) => Err(BuildError::StepFailed {
                step,
                tail: format!(
                    "{tail}\n(full log: {})",
                    log_path.unwrap_or_else(|| "not stored".into())
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

/// Which tag a build gets.
enum Tag {
    /// The tag already holds this revision built with this config commit.
    Built(String),
    /// A tag no image holds yet.
    New(String),
}

/// The image's labels: where its code came from, which run built it, with which config.
fn labels(
    event: &Envelope,
    project: &ProjectConfig,
    revision: &str,
    config_commit: Option<&String>,
) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_REVISION.to_owned(), revision.to_owned()),
        (LABEL_SOURCE.to_owned(), project.source.public_url()),
        (LABEL_CREATED.to_owned(), chrono::Utc::now().to_rfc3339()),
        (LABEL_RUN.to_owned(), event.run_id.to_string()),
        (LABEL_PROJECT.to_owned(), event.project.clone()),
    ]);
    if let Some(c) = config_commit {
        labels.insert(LABEL_CONFIG_COMMIT.to_owned(), c.clone());
    }
    labels
}

/// Build args are visible in `docker history`: only what is not secret.
fn build_args(
    run_id: &str,
    revision: &str,
    config_commit: Option<&String>,
) -> HashMap<String, String> {
    HashMap::from([
        ("FERRY_REVISION".to_owned(), revision.to_owned()),
        ("FERRY_RUN_ID".to_owned(), run_id.to_owned()),
        (
            "FERRY_CONFIG_COMMIT".to_owned(),
            config_commit.cloned().unwrap_or_default(),
        ),
    ])
}

impl StageHandler for Stage {
    type Input = BuildInput;
    type Error = BuildError;

    async fn run(&self, ctx: &BusContext, event: &Received<BuildInput>) -> Result<(), BuildError> {
        let BuildInput::SourceChanged(source) = &event.input;
        let project = ferry_shared::stage::project(&self.cfg, event)?;
        let _working_copy = self.working_copy(&event.project).await;
        // An engine that fails mid-build: the build goes to another one at once.
        let mut tried = Vec::new();
        let (built, order) = loop {
            let before = tried.len();
            match self.build(event, project, source, &mut tried).await {
                Err(BuildError::Engine(e))
                    if tried.len() > before && tried.len() < self.engines.len() =>
                {
                    tracing::warn!("build engine failed ({e}): building on another");
                }
                r => break r,
            }
        }
        .inspect_err(|e| tracing::warn!("build failed: {}", self.reason(e)))?;
        tracing::info!(image = %built.image, order = %order.mark(), "image built");
        let mut done = event.follow(Event::ImageBuilt(built), None);
        done.order = Some(order);
        Ok(ctx.emit(&done).await?)
    }

    /// A checkout error quotes the repository URL, token and all.
    fn reason(&self, error: &BuildError) -> String {
        let scrub = ferry_shared::scrub::Scrubber::new(self.cfg.secret_values());
        scrub.text(&error.to_string())
    }
}

/// Where a run's build log is stored.
pub fn log_path(cfg: &FerryConfig, run_id: &str) -> PathBuf {
    cfg.build.log_dir.join(run_id).join("build.log")
}

//! builder: consumes `source.changed`, publishes `image.built` (or `build.failed`).
//!
//! Checks out the code at exactly the triggering revision and the project's config repo
//! at its latest commit, lays the config files over the code, and builds the image on
//! the build host's Docker Engine. The image is tagged `<registry>/<image>:<revision>`;
//! a rebuild of the same revision with a newer config commit gets
//! `<revision>-cfg<commit[..8]>`, so no tag is ever moved.

mod buildlog;
pub mod checkout;
pub mod command;
mod context;
mod dockerignore;
mod error;
mod image;
mod lineage;
mod remote;

pub use buildlog::BuildLog;
pub use error::BuildError;

use checkout::Checkouts;
use ferry_shared::bus::{Context as BusContext, StageSpec};
use ferry_shared::config::{ConfigRepo, FerryConfig, ProjectConfig};
use ferry_shared::event::{Envelope, Event, ImageBuilt, SourceChanged};
use ferry_shared::order::RunOrder;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{BuildInput, Input, Received, StageHandler};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE: &str = BuildInput::SERVICE;

pub fn spec() -> StageSpec {
    BuildInput::spec()
}

/// One build at a time per process: builds are CPU- and disk-bound; scale with replicas.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9602,
    prefetch: 1,
    handler_timeout_secs: 1500,
    shutdown_grace_secs: 25,
};

pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
pub const LABEL_CREATED: &str = "org.opencontainers.image.created";
pub const LABEL_RUN: &str = "io.ferry.run-id";
pub const LABEL_PROJECT: &str = "io.ferry.project";
pub const LABEL_CONFIG_COMMIT: &str = "io.ferry.config-commit";

pub struct Stage {
    cfg: Arc<FerryConfig>,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        Self { cfg }
    }

    async fn build(
        &self,
        event: &Envelope,
        project: &ProjectConfig,
        source: &SourceChanged,
    ) -> Result<(ImageBuilt, RunOrder), BuildError> {
        let b = &self.cfg.build;
        let timeout = Duration::from_secs(b.timeout_secs);
        let checkouts = Checkouts { cfg: b, timeout };
        let (code, revision) = checkouts
            .code(&event.project, &project.source, source)
            .await?;
        // From here on the revision is the commit checked out (a name resolved).
        let source = &SourceChanged {
            revision,
            ..source.clone()
        };
        let order = lineage::order(&project.source, &code, source, timeout).await?;
        let mut overlay = BTreeMap::new();
        let mut secrets: Vec<String> = [
            b.svn_password.as_ref(),
            self.cfg.registry.as_ref().map(|r| &r.password),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().clone())
        .collect();
        // Every configured secret, the tokens in repository URLs included: a failing
        // `git clone` quotes its URL.
        secrets.extend(self.cfg.secret_values());
        let mut config_commit = None;
        if let Some(repo) = &project.config_repo {
            let (root, commit) = checkouts.config(&event.project, repo).await?;
            for (from, to) in &repo.files {
                let file = root.join(from);
                if !file.is_file() {
                    return Err(BuildError::MissingConfigFile(from.clone()));
                }
                if is_secret_file(repo, from, to) {
                    secrets.extend(ferry_shared::scrub::secret_file_values(
                        from,
                        &std::fs::read_to_string(&file).unwrap_or_default(),
                    ));
                }
                overlay.insert(to.clone(), file);
            }
            if root.join("Dockerfile").is_file()
                && !repo.files.values().any(|t| *t == project.dockerfile)
            {
                overlay.insert(project.dockerfile.clone(), root.join("Dockerfile"));
            }
            config_commit = Some(commit);
        }
        let context = context::Context::assemble(&code, overlay, &project.dockerfile)?;

        let docker = ferry_shared::docker::connect(&b.docker_host)
            .await
            .map_err(|e| BuildError::Engine(e.to_string()))?;
        let registry = self
            .cfg
            .registry
            .as_ref()
            .map(|r| r.address.as_str())
            .unwrap_or("localhost");
        let repo_name = format!("{registry}/{}", project.image);
        let mut tag = format!("{repo_name}:{}", source.revision);
        if let Some(existing) = image::labels(&docker, &tag).await {
            if existing.get(LABEL_CONFIG_COMMIT) == config_commit.as_ref() {
                // Built before (a redelivery): the image is already what this run needs.
                tracing::info!(%tag, "image already built for this revision and config commit");
                let built = ImageBuilt {
                    docker_millis: None,
                    revision: source.revision.clone(),
                    image: tag,
                    config_commit,
                    build_log: None,
                };
                return Ok((built, order));
            }
            let short: String = config_commit
                .as_deref()
                .unwrap_or("none")
                .chars()
                .take(8)
                .collect();
            tag = format!("{repo_name}:{}-cfg{short}", source.revision);
        }

        let run_id = event.run_id.to_string();
        let mut labels = HashMap::from([
            (LABEL_REVISION.to_owned(), source.revision.clone()),
            (LABEL_SOURCE.to_owned(), project.source.public_url()),
            (LABEL_CREATED.to_owned(), chrono::Utc::now().to_rfc3339()),
            (LABEL_RUN.to_owned(), run_id.clone()),
            (LABEL_PROJECT.to_owned(), event.project.clone()),
        ]);
        if let Some(c) = &config_commit {
            labels.insert(LABEL_CONFIG_COMMIT.to_owned(), c.clone());
        }
        // Build args are visible in `docker history`: only what is not secret.
        let args = HashMap::from([
            ("FERRY_REVISION".to_owned(), source.revision.clone()),
            ("FERRY_RUN_ID".to_owned(), run_id.clone()),
            (
                "FERRY_CONFIG_COMMIT".to_owned(),
                config_commit.clone().unwrap_or_default(),
            ),
        ]);
        let mut log = BuildLog::new(b.max_log_bytes, secrets);
        log.push(&format!(
            "ferry: building {tag} from {} files\n",
            context.len()
        ));
        let req = image::Request {
            tag: &tag,
            dockerfile: &project.dockerfile,
            args,
            labels,
            network: &self.cfg.build.network,
        };
        let docker_started = std::time::Instant::now();
        let result = match tokio::time::timeout(
            timeout,
            image::build(&docker, context, req, &mut log),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(BuildError::Timeout(b.timeout_secs)),
        };
        let stored = BuildLog::store(&log.finish(), &b.log_dir, &run_id);
        let log_path = stored.as_ref().map(|p| p.display().to_string()).ok();
        match result {
            Ok(()) => Ok((
                ImageBuilt {
                    docker_millis: Some(docker_started.elapsed().as_millis() as u64),
                    revision: source.revision.clone(),
                    image: tag,
                    config_commit,
                    build_log: log_path,
                },
                order,
            )),
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

impl StageHandler for Stage {
    type Input = BuildInput;
    type Error = BuildError;

    async fn run(&self, ctx: &BusContext, event: &Received<BuildInput>) -> Result<(), BuildError> {
        let BuildInput::SourceChanged(source) = &event.input;
        let project = ferry_shared::stage::project(&self.cfg, event)?;
        let (built, order) = self
            .build(event, project, source)
            .await
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

/// Whether a config-repo file holds secrets: those listed in `secret_files`, or by
/// default any whose name says `env` (`.env`, `app.env`, `env/production`).
fn is_secret_file(repo: &ConfigRepo, from: &str, to: &str) -> bool {
    match &repo.secret_files {
        Some(list) => list.iter().any(|f| f == from),
        None => from.contains("env") || to.contains("env"),
    }
}

/// The secret values in a project's config repo (its secret files, at the branch's
/// latest commit), for services that must scrub what they record but do not build: the
/// tester quotes the application's answers and output. Checked out in
/// `<build.work_dir>/<project>/<folder>`.
pub async fn config_secrets(
    cfg: &FerryConfig,
    project: &str,
    repo: &ConfigRepo,
    folder: &str,
) -> Result<Vec<String>, BuildError> {
    let b = &cfg.build;
    let checkouts = Checkouts {
        cfg: b,
        timeout: Duration::from_secs(b.timeout_secs),
    };
    let (root, _) = checkouts.config_in(folder, project, repo).await?;
    let mut secrets = Vec::new();
    for (from, to) in &repo.files {
        if is_secret_file(repo, from, to) {
            let text = std::fs::read_to_string(root.join(from)).unwrap_or_default();
            secrets.extend(ferry_shared::scrub::secret_file_values(from, &text));
        }
    }
    Ok(secrets)
}

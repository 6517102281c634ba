//! tester: consumes `deploy.succeeded.<env>`, runs the project's test plan against that
//! environment (HTTP checks, then the optional test container) and publishes
//! `test.passed.<env>` (the updater then promotes the same image to the next
//! environment) or `test.failed.<env>` with every check's result (the updater then
//! rolls the environment back to what it ran before).
//!
//! An environment the plan does not cover passes at once, so promotion never waits on
//! tests nobody wrote. Trouble running the tests (a Docker host away) is retried, never
//! reported as a failed test: only the application's own answers fail a run. A run
//! that a newer one replaced before its tests began ends as `deploy.superseded`: its
//! result could not matter, and testing the newer container would judge the wrong
//! revision.

pub mod container;
mod error;
pub mod http_check;
mod target;

pub use error::TesterError;

use ferry_shared::bus::{Context, StageSpec};
use ferry_shared::config::{FerryConfig, HostFiles};
use ferry_shared::event::{
    CheckResult, DeploySucceeded, DeploySuperseded, Envelope, Event, TestReport,
};
use ferry_shared::scrub::Scrubber;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::stage::{Input, Received, StageHandler, TestInput, tests_failed};
use ferry_shared::test_plan::TestContainer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::Located;

pub const SERVICE: &str = TestInput::SERVICE;

pub fn spec() -> StageSpec {
    TestInput::spec()
}

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    admin_port: 9606,
    prefetch: 2,
    handler_timeout_secs: 900,
    shutdown_grace_secs: 25,
    host_files: HostFiles::Check,
};

pub struct Stage {
    cfg: Arc<FerryConfig>,
    client: reqwest::Client,
    /// The configured secrets; a run adds its project's config-repo secrets.
    scrubber: Scrubber,
}

impl Stage {
    pub fn new(cfg: Arc<FerryConfig>) -> Self {
        let client = http_check::client();
        let scrubber = Scrubber::new(cfg.secret_values());
        Self {
            cfg,
            client,
            scrubber,
        }
    }

    /// What to scrub from this project's results: the configured secrets and the
    /// values in its config repo's secret files (a debug page or a test printing the
    /// environment would otherwise carry the production `.env` into events and chat).
    async fn scrubber_for(&self, project: &str) -> Result<Scrubber, TesterError> {
        let Some(repo) = self
            .cfg
            .projects
            .get(project)
            .and_then(|p| p.config_repo.as_ref())
        else {
            return Ok(self.scrubber.clone());
        };
        let more = ferry_config_repo::config_secrets(&self.cfg, project, repo, "tester-config")
            .await
            .map_err(|e| TesterError::Secrets(e.to_string()))?;
        Ok(self.scrubber.with(more))
    }

    async fn test(
        &self,
        event: &Envelope,
        deployed: &DeploySucceeded,
    ) -> Result<Verdict, TesterError> {
        let project = ferry_shared::stage::project(&self.cfg, event)?;
        let env_name = event.environment.as_deref().unwrap_or_default();
        let env = self.cfg.environments.get(env_name);
        let mut report = TestReport {
            revision: deployed.revision.clone(),
            image: deployed.image.clone(),
            previous_image: deployed.previous_image.clone(),
            checks: vec![],
            output: None,
            millis: 0,
        };
        let Some(plan) = project.tests.as_ref().filter(|p| p.covers(env_name)) else {
            return Ok(Verdict::Tested(report));
        };
        let mut started = Instant::now();
        let locate = async {
            match env {
                Some(e) => {
                    let names = (event.project.as_str(), env_name);
                    target::locate(&self.cfg, names, e, event.run_id.into(), deployed)
                        .await
                        .map_err(|why| TesterError::Locate {
                            environment: env_name.to_owned(),
                            why,
                        })
                }
                None => Ok(Located::Url(None)),
            }
        };
        // Where the run answers, and the config repo's secrets (a fetch): asked at once.
        // The secrets only matter for a run still there to test; a failure to read them
        // counts only then.
        let (located, scrubber) = tokio::join!(locate, self.scrubber_for(&event.project));
        let located = located?;
        let base_url = match located {
            Located::Url(url) => url,
            Located::Replaced { image, run_id } => {
                return Ok(Verdict::Replaced(DeploySuperseded {
                    revision: deployed.revision.clone(),
                    image: deployed.image.clone(),
                    running_image: image,
                    running_run_id: run_id,
                }));
            }
            Located::Stopped(why) => {
                report.checks.push(CheckResult {
                    name: "running".into(),
                    passed: false,
                    millis: started.elapsed().as_millis() as u64,
                    detail: Some(why),
                });
                report.millis = started.elapsed().as_millis() as u64;
                return Ok(Verdict::Tested(report));
            }
        };
        // Reading the config repo is Ferry's own work, so the tests' time starts after
        // it (the overhead figure depends on it).
        let scrubber = scrubber?;
        started = Instant::now();
        let base_url = base_url.as_deref();
        let mut first = true;
        for check in plan.checks.iter().filter(|c| c.runs_in(env_name)) {
            let wait = first.then(|| Duration::from_secs(plan.wait_until_healthy_secs));
            first = false;
            let mut result = http_check::run(&self.client, base_url, check, wait).await;
            scrub_check(&scrubber, &mut result);
            tracing::info!(check = %result.name, passed = result.passed, millis = result.millis, "check");
            report.checks.push(result);
        }
        if let Some(c) = plan.container.as_ref().filter(|c| c.runs_in(env_name)) {
            let ran = self
                .run_container(event, deployed, c, base_url.unwrap_or_default())
                .await
                .map_err(|e| match e {
                    TesterError::Container(why) => TesterError::Container(scrubber.text(&why)),
                    other => other,
                })?;
            let mut check = ran.check;
            scrub_check(&scrubber, &mut check);
            report.checks.push(check);
            report.output = Some(scrubber.text(&ran.output));
        }
        report.millis = started.elapsed().as_millis() as u64;
        Ok(Verdict::Tested(report))
    }

    /// Run the plan's test container on its host (or the environment's first, or the
    /// build host) against `target_url`.
    async fn run_container(
        &self,
        event: &Envelope,
        deployed: &DeploySucceeded,
        c: &TestContainer,
        target_url: &str,
    ) -> Result<container::Ran, TesterError> {
        let env_name = event.environment.as_deref().unwrap_or_default();
        let env = self.cfg.environments.get(env_name);
        let host_name = c
            .host
            .clone()
            .or_else(|| env.and_then(|e| e.hosts.first().cloned()));
        let host_url = match &host_name {
            Some(h) => self.cfg.docker_hosts.get(h).map(|d| d.url.clone()),
            None => Some(self.cfg.build.docker_host.clone()),
        }
        .unwrap_or_default();
        // `image = "same"` runs the image the event names: only if it is the
        // project's own (a forged `deploy.succeeded` must not run a foreign image).
        if c.image == "same" {
            ferry_shared::image_ref::deployable(&self.cfg, &event.project, &deployed.image)
                .map_err(TesterError::Refused)?;
        }
        let subject = container::Subject {
            project: &event.project,
            environment: env_name,
            run_id: event.run_id.to_string(),
            revision: &deployed.revision,
            image: &deployed.image,
            target_url,
        };
        let host = (
            host_name.as_deref().unwrap_or("build host"),
            host_url.as_str(),
        );
        container::run(&self.cfg, host, c, &subject)
            .await
            .map_err(TesterError::Container)
    }
}

/// A check's name quotes its URL or its container's command, and its detail the
/// application's answer: both may hold a secret (the command may echo a `.env` value).
fn scrub_check(scrubber: &Scrubber, check: &mut CheckResult) {
    check.name = scrubber.text(&check.name);
    check.detail = check.detail.take().map(|d| scrubber.text(&d));
}

/// What testing a deploy came to.
enum Verdict {
    Tested(TestReport),
    /// A newer run replaced this one in the environment before it could be tested.
    Replaced(DeploySuperseded),
}

/// One line a person can act on: which checks failed and why.
fn summary(checks: &[CheckResult]) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| match &c.detail {
            Some(d) => format!("{}: {d}", c.name),
            None => c.name.clone(),
        })
        .collect();
    format!(
        "{} of {} checks failed: {}",
        failed.len(),
        checks.len(),
        failed.join(" | ")
    )
}

impl StageHandler for Stage {
    type Input = TestInput;
    type Error = TesterError;

    async fn run(&self, ctx: &Context, event: &Received<TestInput>) -> Result<(), TesterError> {
        let TestInput::DeploySucceeded(deployed) = &event.input;
        let env = event.environment.as_deref();
        let report = match self.test(event, deployed).await? {
            Verdict::Tested(r) => r,
            Verdict::Replaced(superseded) => {
                tracing::info!(environment = ?env, newer = %superseded.running_run_id,
                    "not tested: a newer run replaced this one");
                let e = Event::DeploySuperseded(superseded);
                return Ok(ctx.emit(&event.follow(e, env)).await?);
            }
        };
        let result = if report.checks.iter().all(|c| c.passed) {
            tracing::info!(environment = ?env, checks = report.checks.len(), "tests passed");
            event.follow(Event::TestPassed(report), env)
        } else {
            let reason = summary(&report.checks);
            tracing::warn!(environment = ?env, "tests failed: {reason}");
            tests_failed(SERVICE, event, ctx.attempt, reason, report)
        };
        Ok(ctx.emit(&result).await?)
    }
}

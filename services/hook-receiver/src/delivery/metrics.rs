//! The pipeline's labelled metrics, served on the hook-receiver's `/metrics`: stage
//! durations, deploys, rollbacks and the four delivery figures per project and
//! environment. The ledger recorder counts each event once, in the replica that added
//! it to the ledger, so summing over replicas is right and a restart counts nothing
//! twice.

use super::facts::{Cause, Fact};
use ferry_shared::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// Stage durations: a pull of seconds to a build of half an hour or an approval of days.
const STAGE_BUCKETS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
];

/// Lead time and time to restore: minutes to a week.
const DELIVERY_BUCKETS: [f64; 11] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvLabels {
    project: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
    project: String,
    environment: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    project: String,
    environment: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    project: String,
    environment: String,
    cause: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Pipeline {
    runs_started: Family<ProjectLabels, Counter>,
    stage_duration: Histograms<StageLabels>,
    deploys: Family<OutcomeLabels, Counter>,
    rollbacks: Family<EnvLabels, Counter>,
    production_deploys: Family<EnvLabels, Counter>,
    lead_time: Histograms<EnvLabels>,
    change_failures: Family<CauseLabels, Counter>,
    time_to_restore: Histograms<EnvLabels>,
}

impl Pipeline {
    /// The families, registered with the service's metrics.
    pub fn register(m: &Metrics) -> Pipeline {
        let p = Pipeline {
            runs_started: Family::default(),
            stage_duration: Family::new_with_constructor(|| Histogram::new(STAGE_BUCKETS)),
            deploys: Family::default(),
            rollbacks: Family::default(),
            production_deploys: Family::default(),
            lead_time: Family::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS)),
            change_failures: Family::default(),
            time_to_restore: Family::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS)),
        };
        m.register(
            "ferry_runs_started",
            "Runs started (source.changed), per project.",
            p.runs_started.clone(),
        );
        m.register(
            "ferry_stage_duration_seconds",
            "Time from the event that started a stage to its outcome (environment is empty for build and push).",
            p.stage_duration.clone(),
        );
        m.register(
            "ferry_deploys",
            "Deploys that ended, per environment and outcome (succeeded, failed, superseded).",
            p.deploys.clone(),
        );
        m.register(
            "ferry_rollbacks",
            "Rollbacks done (deploy.rolled_back), per environment.",
            p.rollbacks.clone(),
        );
        m.register(
            "ferry_production_deploys",
            "Deployments to a project's production environment (its last): deployment frequency.",
            p.production_deploys.clone(),
        );
        m.register(
            "ferry_lead_time_seconds",
            "Commit to deploy.succeeded in production: lead time for changes.",
            p.lead_time.clone(),
        );
        m.register(
            "ferry_change_failures",
            "Production deployments that failed their tests there or were rolled back.",
            p.change_failures.clone(),
        );
        m.register(
            "ferry_time_to_restore_seconds",
            "A failed production deployment's time live until a rollback or the next deployment replaced it.",
            p.time_to_restore.clone(),
        );
        p
    }

    /// Start the series of a project's environments at zero, so the first deploy after a
    /// start is an increase Prometheus sees (a series born at 1 hides its first count
    /// from `rate` and `increase`).
    pub fn known(&self, project: &str, environments: &[String]) {
        for env in environments {
            let labels = EnvLabels {
                project: project.to_owned(),
                environment: env.clone(),
            };
            let _ = self.rollbacks.get_or_create(&labels);
            for outcome in ["succeeded", "failed", "superseded"] {
                let _ = self.deploys.get_or_create(&OutcomeLabels {
                    project: project.to_owned(),
                    environment: env.clone(),
                    outcome,
                });
            }
        }
        let _ = self.runs_started.get_or_create(&ProjectLabels {
            project: project.to_owned(),
        });
        if let Some(prod) = environments.last() {
            let labels = EnvLabels {
                project: project.to_owned(),
                environment: prod.clone(),
            };
            let _ = self.production_deploys.get_or_create(&labels);
            let _ = self.lead_time.get_or_create(&labels);
            let _ = self.time_to_restore.get_or_create(&labels);
            for cause in [Cause::TestFailed, Cause::RolledBack] {
                let _ = self.change_failures.get_or_create(&CauseLabels {
                    project: project.to_owned(),
                    environment: prod.clone(),
                    cause: cause.as_str(),
                });
            }
        }
    }

    /// Count one fact of an event in `project` (and `environment`, where it has one).
    pub fn count(&self, project: &str, environment: Option<&str>, fact: &Fact) {
        let env = || EnvLabels {
            project: project.to_owned(),
            environment: environment.unwrap_or_default().to_owned(),
        };
        let labels = |outcome_or_cause: &'static str| OutcomeLabels {
            project: project.to_owned(),
            environment: environment.unwrap_or_default().to_owned(),
            outcome: outcome_or_cause,
        };
        match fact {
            Fact::RunStarted => {
                let p = ProjectLabels {
                    project: project.to_owned(),
                };
                self.runs_started.get_or_create(&p).inc();
            }
            Fact::Stage {
                stage,
                outcome,
                seconds,
            } => {
                let l = StageLabels {
                    stage: stage.as_str(),
                    project: project.to_owned(),
                    environment: environment.unwrap_or_default().to_owned(),
                    outcome: outcome.as_str(),
                };
                self.stage_duration.get_or_create(&l).observe(*seconds);
            }
            Fact::Deploy { outcome } => {
                self.deploys.get_or_create(&labels(outcome)).inc();
            }
            Fact::Rollback => {
                self.rollbacks.get_or_create(&env()).inc();
            }
            Fact::ProductionDeploy { lead_time } => {
                self.production_deploys.get_or_create(&env()).inc();
                if let Some(s) = lead_time {
                    self.lead_time.get_or_create(&env()).observe(*s);
                }
            }
            Fact::ChangeFailure { cause } => {
                let l = CauseLabels {
                    project: project.to_owned(),
                    environment: environment.unwrap_or_default().to_owned(),
                    cause: cause.as_str(),
                };
                self.change_failures.get_or_create(&l).inc();
            }
            Fact::Restored { seconds } => {
                self.time_to_restore.get_or_create(&env()).observe(*seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_become_labelled_series() {
        let m = Metrics::new("hook-receiver");
        let p = Pipeline::register(&m);
        p.count(
            "shop",
            Some("production"),
            &Fact::ProductionDeploy {
                lead_time: Some(120.0),
            },
        );
        p.count(
            "shop",
            Some("production"),
            &Fact::ChangeFailure {
                cause: Cause::RolledBack,
            },
        );
        let text = m.render();
        for line in [
            "ferry_production_deploys_total{service=\"hook-receiver\",project=\"shop\",environment=\"production\"} 1",
            "ferry_lead_time_seconds_bucket{service=\"hook-receiver\",le=\"300.0\",project=\"shop\",environment=\"production\"} 1",
            "ferry_change_failures_total{service=\"hook-receiver\",project=\"shop\",environment=\"production\",cause=\"rolled_back\"} 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}

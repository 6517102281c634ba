//! The four delivery figures of each project's production over a window of days, and
//! its deployments per day: what the dashboard's delivery page shows.

use super::facts::{Fact, Step, Tracker};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// One production environment's figures over the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub deployments: u32,
    pub failures: u32,
    /// Lead times of the deployments whose commit is known, in seconds.
    pub lead_times: Vec<f64>,
    /// Times to restore, in seconds.
    pub restores: Vec<f64>,
    /// Deployments and failures per day (UTC), oldest first, every day of the window.
    /// A window of `n` days from now back starts on a date `n` days ago, so it touches
    /// `n + 1` dates: the chart shows them all, the frequency divides by `window_days`.
    pub days: Vec<Day>,
    /// The window's length in days.
    pub window_days: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    pub deployments: u32,
    pub failures: u32,
}

impl Figures {
    /// Deployments per day over the window: what `increase(ferry_production_deploys_total[Nd]) / N`
    /// gives for the same N days.
    pub fn per_day(&self) -> f64 {
        let days = if self.window_days > 0.0 {
            self.window_days
        } else {
            self.days.len().max(1) as f64
        };
        f64::from(self.deployments) / days
    }

    /// Failures among deployments, 0–1; none when nothing was deployed.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.deployments > 0).then(|| f64::from(self.failures) / f64::from(self.deployments))
    }

    pub fn lead_time_median(&self) -> Option<f64> {
        median(&self.lead_times)
    }

    pub fn restore_median(&self) -> Option<f64> {
        median(&self.restores)
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Figures per (project, production environment), built from steps handed one at a time
/// (oldest first, starting early enough for most commits made before the window): only
/// what happened from `from` to `to` counts. Nothing is kept but the figures, and the
/// deployments whose commit came before the steps did ([`Summary::unmatched`]).
pub struct Summary<P> {
    tracker: Tracker,
    production: P,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: BTreeMap<(String, String), Figures>,
    unmatched: Vec<Unmatched>,
}

/// A production deployment in the window whose run's commit was not among the steps:
/// its lead time is for the caller to find ([`Summary::lead_time`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Unmatched {
    pub project: String,
    pub environment: String,
    pub run_id: uuid::Uuid,
    pub deployed: DateTime<Utc>,
}

/// At most this many deployments wait for their commit: each costs the caller a read.
pub const MAX_UNMATCHED: usize = 200;

impl<P: Fn(&str) -> Option<String>> Summary<P> {
    pub fn new(production: P, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Summary {
            tracker: Tracker::without_stage_times(),
            production,
            from,
            to,
            out: BTreeMap::new(),
            unmatched: Vec::new(),
        }
    }

    /// The deployments whose commit came before the steps (at most [`MAX_UNMATCHED`]),
    /// handed over once.
    pub fn unmatched(&mut self) -> Vec<Unmatched> {
        std::mem::take(&mut self.unmatched)
    }

    /// The lead time of a deployment [`Summary::unmatched`] gave, from its commit's time.
    pub fn lead_time(&mut self, u: &Unmatched, committed: DateTime<Utc>) {
        if let Some(f) = self
            .out
            .get_mut(&(u.project.clone(), u.environment.clone()))
        {
            f.lead_times
                .push((u.deployed - committed).num_milliseconds().max(0) as f64 / 1000.0);
        }
    }

    /// What serves in production when the window's read starts, from an event before
    /// it: so a deployment made long ago that fails or is replaced in the window counts
    /// as the recorder counted it.
    pub fn seed(&mut self, step: &Step<'_>) {
        let prod = (self.production)(step.project);
        self.tracker.seed(step, prod.as_deref());
    }

    pub fn add(&mut self, step: &Step<'_>) {
        let prod = (self.production)(step.project);
        let facts = self.tracker.observe(step, prod.as_deref());
        if step.time < self.from || step.time > self.to {
            return;
        }
        let (Some(env), Some(prod)) = (step.environment, prod) else {
            return;
        };
        if env != prod {
            return;
        }
        let first = self.from.date_naive();
        let days = (self.to.date_naive() - first).num_days().max(0) + 1;
        let window_days = (self.to - self.from).num_milliseconds().max(0) as f64 / 86_400_000.0;
        let figures = self
            .out
            .entry((step.project.to_owned(), env.to_owned()))
            .or_insert_with(|| Figures {
                days: (0..days)
                    .map(|d| Day {
                        date: first + chrono::Days::new(d as u64),
                        deployments: 0,
                        failures: 0,
                    })
                    .collect(),
                window_days,
                ..Figures::default()
            });
        let day = usize::try_from((step.time.date_naive() - first).num_days()).ok();
        let mut day = day.and_then(|d| figures.days.get_mut(d));
        for f in facts {
            match f {
                Fact::ProductionDeploy { lead_time } => {
                    figures.deployments += 1;
                    figures.lead_times.extend(lead_time);
                    if lead_time.is_none() && self.unmatched.len() < MAX_UNMATCHED {
                        self.unmatched.push(Unmatched {
                            project: step.project.to_owned(),
                            environment: env.to_owned(),
                            run_id: step.run_id,
                            deployed: step.time,
                        });
                    }
                    if let Some(d) = day.as_deref_mut() {
                        d.deployments += 1;
                    }
                }
                Fact::ChangeFailure { .. } => {
                    figures.failures += 1;
                    if let Some(d) = day.as_deref_mut() {
                        d.failures += 1;
                    }
                }
                Fact::Restored { seconds } => figures.restores.push(seconds),
                _ => {}
            }
        }
    }

    pub fn finish(self) -> BTreeMap<(String, String), Figures> {
        self.out
    }
}

/// [`Summary`] over steps at hand.
pub fn summarise<'a>(
    steps: impl IntoIterator<Item = Step<'a>>,
    production: impl Fn(&str) -> Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<(String, String), Figures> {
    let mut s = Summary::new(production, from, to);
    for step in steps {
        s.add(&step);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_utc()
    }

    fn step(
        run: Uuid,
        kind: &'static str,
        env: Option<&'static str>,
        t: DateTime<Utc>,
    ) -> Step<'static> {
        Step {
            event_id: Uuid::new_v4(),
            causation_id: None,
            run_id: run,
            project: "shop",
            environment: env,
            kind,
            time: t,
            committed: None,
        }
    }

    #[test]
    fn figures_count_only_the_window_and_fill_every_day() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let steps = vec![
            // Before the window: sets what serves, counts nothing.
            step(a, "source.changed", None, at(1, 0)),
            step(a, "deploy.succeeded", Some("production"), at(1, 1)),
            // In the window: a commit on the 2nd deployed on the 3rd...
            step(b, "source.changed", None, at(2, 0)),
            step(b, "deploy.succeeded", Some("staging"), at(3, 0)),
            step(b, "deploy.succeeded", Some("production"), at(3, 2)),
            // ...failing its tests and rolled back two hours after it went live.
            step(b, "test.failed", Some("production"), at(3, 3)),
            step(b, "deploy.rolled_back", Some("production"), at(3, 4)),
            step(c, "source.changed", None, at(4, 0)),
            step(c, "deploy.succeeded", Some("production"), at(4, 1)),
        ];
        let prod = |_: &str| Some("production".to_owned());
        let got = summarise(steps, prod, at(2, 0), at(5, 12));
        let f = &got[&("shop".to_owned(), "production".to_owned())];
        assert_eq!(f.deployments, 2);
        assert_eq!(f.failures, 1);
        assert_eq!(f.failure_rate(), Some(0.5));
        assert_eq!(f.lead_time_median(), Some((26.0 * 3600.0 + 3600.0) / 2.0));
        assert_eq!(f.restores, [7200.0]);
        let days: Vec<_> = f.days.iter().map(|d| (d.deployments, d.failures)).collect();
        assert_eq!(days, [(0, 0), (1, 1), (1, 0), (0, 0)]);
        // Two deployments over the window's 3.5 days, though it touches four dates.
        assert_eq!(f.per_day(), 2.0 / 3.5);
    }

    #[test]
    fn a_failed_deployment_from_before_the_read_restored_in_the_window_counts_its_restore() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let prod = |_: &str| Some("production".to_owned());
        let mut s = Summary::new(prod, at(10, 0), at(12, 0));
        // Where production stood when the read starts: deployed and failed on the 1st.
        s.seed(&step(a, "deploy.succeeded", Some("production"), at(1, 0)));
        s.seed(&step(a, "test.failed", Some("production"), at(1, 1)));
        // An operator's rollback on the 11th.
        s.add(&step(
            b,
            "deploy.rolled_back",
            Some("production"),
            at(11, 0),
        ));
        let got = s.finish();
        let f = &got[&("shop".to_owned(), "production".to_owned())];
        assert_eq!(
            (f.deployments, f.failures),
            (0, 0),
            "both before the window"
        );
        assert_eq!(f.restores, [10.0 * 86_400.0]);
    }
}

//! `GET /delivery?days=30`: the four delivery figures of each production environment
//! the operator may see, with a chart of deployments and failures per day. Read from
//! the ledger (the whole history), else from the runs in memory.

use super::i18n::T;
use super::pages::visible;
use super::{Signed, layout};
use crate::App;
use crate::delivery::facts::Step;
use crate::delivery::summary::{Figures, Summary, summarise};
use crate::delivery::{KINDS, production, where_productions_stood, window_start};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Window lengths offered. Another asked for is rounded up to the next (a year at most):
/// every window the page computes is one it keeps, so no request makes it read the
/// ledger more often than every [`FRESH_FOR`] per window.
const CHOICES: [u32; 4] = [7, 30, 90, 365];

fn offered(days: u32) -> u32 {
    CHOICES
        .into_iter()
        .find(|&c| c >= days)
        .unwrap_or(CHOICES[CHOICES.len() - 1])
}
/// Commits are read with the window's events from this far before it; a deployment whose
/// commit is older still has its run read for it.
const COMMIT_LOOKBACK_DAYS: u32 = 30;

#[derive(Deserialize)]
pub struct Window {
    days: Option<u32>,
}

pub async fn show(
    State(app): State<Arc<App>>,
    signed: Signed,
    Query(w): Query<Window>,
) -> Response {
    let lang = signed.lang;
    let days = offered(w.days.unwrap_or(30));
    let now = Utc::now();
    let figures = match figures(&app, days, now).await {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("The ledger did not answer: {e}. Try again shortly.");
            return layout::problem(lang, StatusCode::SERVICE_UNAVAILABLE, &msg);
        }
    };
    // Every project's figures are computed (and kept) once; an operator sees theirs.
    let visible = visible(&app, &signed.session.access);
    let figures: Vec<_> = figures
        .iter()
        .filter(|((p, _), _)| visible.contains(&p.as_str()))
        .collect();
    let body = html! {
        h1 { (lang.t(T::Delivery)) }
        p.muted { (lang.t(T::DeliveryHelp)) }
        form.filters method="get" action="/delivery" {
            label { (lang.t(T::Window)) " "
                select name="days" {
                    @for c in CHOICES { option value=(c) selected[c == days] { (c) } }
                }
            }
            button type="submit" { (lang.t(T::Filter)) }
        }
        @if figures.is_empty() {
            p.muted #no-deployments { (lang.t(T::NoDeployments)) }
        }
        @for ((project, env), f) in figures.iter().copied() {
            (card(lang, project, env, f))
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(
            Some(&signed),
            lang,
            lang.t(T::Delivery),
            "/delivery",
            None,
            body,
        ),
    )
}

/// Figures kept this long: a window of days hardly moves in a minute, and a year of
/// deployments is tens of thousands of rows to read (a few hundred milliseconds).
const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// The figures of the last `days` (one of [`CHOICES`]), computed at most every
/// [`FRESH_FOR`] per window, and one computation at a time: requests that find them
/// stale together wait for one read of the ledger rather than each making their own.
#[derive(Default)]
pub struct Cache {
    kept: std::sync::Mutex<HashMap<u32, (std::time::Instant, Arc<ByProject>)>>,
    computing: tokio::sync::Mutex<()>,
}

impl Cache {
    fn fresh(&self, days: u32) -> Option<Arc<ByProject>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&days)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, f)| f.clone())
    }
}

type ByProject = BTreeMap<(String, String), Figures>;

async fn figures(
    app: &App,
    days: u32,
    now: chrono::DateTime<Utc>,
) -> Result<Arc<ByProject>, ferry_ledger::LedgerError> {
    if let Some(f) = app.delivery.fresh(days) {
        return Ok(f);
    }
    let _one_at_a_time = app.delivery.computing.lock().await;
    // Computed while this request waited?
    if let Some(f) = app.delivery.fresh(days) {
        return Ok(f);
    }
    let from = window_start(days, now);
    let prod = |p: &str| production(&app.cfg, p);
    let computed = Arc::new(match app.ledger.get() {
        Some(ledger) => {
            let since = window_start(days + COMMIT_LOOKBACK_DAYS, now);
            let mut summary = Summary::new(prod, from, now);
            // What served in each production when the read starts, however old: a
            // deployment of months ago that fails or is replaced in the window counts
            // here as the recorder, which learnt it the same way, counted it.
            for (_, r) in where_productions_stood(&app.cfg, ledger, Some(since)).await? {
                summary.seed(&Step::of_row(&r));
            }
            ledger
                .each_fact_since(KINDS, since, |r| summary.add(&Step::of_row(&r)))
                .await?;
            // A deployment whose commit came before the read (a branch merged weeks
            // later): its run's commit, as the recorder reads it for its lead time.
            for u in summary.unmatched() {
                let events = ledger.run_events(&u.run_id.to_string()).await?;
                if let Some(c) = events.iter().find_map(|e| Step::of(e).commit_time()) {
                    summary.lead_time(&u, c);
                }
            }
            summary.finish()
        }
        None => from_memory(app, prod, from, now),
    });
    let mut kept = app.delivery.kept.lock().unwrap_or_else(|e| e.into_inner());
    kept.insert(days, (std::time::Instant::now(), computed.clone()));
    Ok(computed)
}

/// Without a ledger: the runs this replica holds in memory.
fn from_memory(
    app: &App,
    prod: impl Fn(&str) -> Option<String>,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> std::collections::BTreeMap<(String, String), Figures> {
    let (runs, _) = app.runs.page(|_| true, 0, usize::MAX);
    let mut steps: Vec<Step<'_>> = runs
        .iter()
        .flat_map(|r| {
            r.events.iter().map(move |l| Step {
                event_id: l.event_id,
                causation_id: l.causation_id,
                run_id: r.run_id,
                project: &r.project,
                environment: l.environment.as_deref(),
                kind: l.kind,
                time: l.time,
                committed: None,
            })
        })
        .collect();
    steps.sort_by_key(|s| s.time);
    summarise(steps, prod, from, to)
}

fn duration(lang: super::i18n::Lang, secs: Option<f64>) -> String {
    let Some(s) = secs else {
        return "—".to_owned();
    };
    let (n, unit) = if s < 120.0 {
        (s, ("s", "秒"))
    } else if s < 7200.0 {
        (s / 60.0, ("min", "分钟"))
    } else if s < 172_800.0 {
        (s / 3600.0, ("h", "小时"))
    } else {
        (s / 86400.0, ("d", "天"))
    };
    let unit = match lang {
        super::i18n::Lang::En => unit.0,
        super::i18n::Lang::ZhCn => unit.1,
    };
    format!("{n:.1} {unit}")
}

fn card(lang: super::i18n::Lang, project: &str, env: &str, f: &Figures) -> Markup {
    let rate = f
        .failure_rate()
        .map_or("—".to_owned(), |r| format!("{:.0}%", r * 100.0));
    html! {
        section.card.delivery data-project=(project) data-environment=(env) {
            h2 { (project) " · " (env) }
            dl.figures {
                div { dt { (lang.t(T::DeploymentFrequency)) } dd.frequency { (format!("{:.2}", f.per_day())) " " (lang.t(T::PerDay)) } }
                div { dt { (lang.t(T::LeadTime)) } dd.lead-time { (duration(lang, f.lead_time_median())) } }
                div { dt { (lang.t(T::ChangeFailureRate)) } dd.failure-rate { (rate) " (" (f.failures) "/" (f.deployments) ")" } }
                div { dt { (lang.t(T::TimeToRestore)) } dd.restore { (duration(lang, f.restore_median())) } }
            }
            (chart(lang, f))
        }
    }
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 140.0;

/// Deployments per day as bars, and in red in front of them the failures of that day
/// (a failure is dated when it happened, so a day may have failures and no deployment).
fn chart(lang: super::i18n::Lang, f: &Figures) -> Markup {
    let most = f
        .days
        .iter()
        .map(|d| d.deployments.max(d.failures))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (WIDTH - 40.0) / f.days.len().max(1) as f64;
    let plot = HEIGHT - 24.0;
    let h = |n: u32| plot * f64::from(n) / f64::from(most);
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(lang.t(T::Deployments)) {
            line.axis x1="36" x2=(WIDTH) y1=(plot) y2=(plot) {}
            text x="30" y="12" text-anchor="end" { (most) }
            text x="30" y=(plot) text-anchor="end" { "0" }
            @for (i, d) in f.days.iter().enumerate() {
                @let x = 40.0 + slot * i as f64;
                @if d.deployments > 0 {
                    rect.deployed x=(x) y=(plot - h(d.deployments)) width=((slot - 2.0).max(1.0)) height=(h(d.deployments)) data-date=(d.date) data-deployments=(d.deployments) data-failures=(d.failures) {
                        title { (d.date) ": " (d.deployments) " " (lang.t(T::Deployments)) ", " (d.failures) " " (lang.t(T::Failures)) }
                    }
                }
                @if d.failures > 0 {
                    rect.failed x=(x) y=(plot - h(d.failures)) width=((slot - 2.0).max(1.0)) height=(h(d.failures)) data-date=(d.date) data-failures=(d.failures) {
                        title { (d.date) ": " (d.deployments) " " (lang.t(T::Deployments)) ", " (d.failures) " " (lang.t(T::Failures)) }
                    }
                }
                @if i == 0 || i + 1 == f.days.len() {
                    text x=(x) y=(HEIGHT - 6.0) { (d.date.format("%m-%d")) }
                }
            }
        }
    }
}

//! `GET /runs/<id>`: one run: its timeline, approvals and rollbacks, test reports,
//! build log and every event. Logs and reports come from the ledger (memory keeps
//! only what lists need).

use super::i18n::{Lang, T};
use super::pages::{badge, decide_forms, duration, held_in, short_image, when};
use super::timeline::{Bar, Outcome, bars};
use super::{Signed, layout};
use crate::App;
use crate::runs::{Run, shipped_by};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_shared::config::operators::Action;
use ferry_shared::event::{Envelope, Event, TestReport};
use maud::{Markup, html};
use std::sync::Arc;
use std::time::Duration;

pub async fn show(
    State(app): State<Arc<App>>,
    signed: Signed,
    Path(run): Path<String>,
    Query(done): Query<super::pages::Done>,
) -> Response {
    let lang = signed.lang;
    let missing = |why: &str| layout::problem(lang, StatusCode::NOT_FOUND, why);
    let Ok(run_id) = uuid::Uuid::parse_str(&run) else {
        return missing("not a run id");
    };
    // One read of the ledger serves the page's reports and, for a run no longer in
    // memory, the run itself.
    let envelopes = crate::api::ledger_events(&app, run_id).await;
    let mut run = app.runs.get(run_id).or_else(|| {
        let events = envelopes.clone()?;
        crate::api::run_from_events(&app, run_id, events)
    });
    // Just after an action started it, the run's first event may still be on its way
    // from the broker's history: wait for it a moment rather than answer 404.
    if run.is_none() && done.done.is_some() {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            run = app.runs.get(run_id);
            if run.is_some() {
                break;
            }
        }
    }
    // A run outside the operator's projects is as unknown as one that never was.
    let Some(run) = run.filter(|r| {
        signed
            .session
            .access
            .allow(Action::View, &r.project, None)
            .is_ok()
    }) else {
        return missing("no such run in the history or the ledger");
    };
    let whole_log = whole_build_log(&app, run_id).await;
    let body = html! {
        (super::pages::flash(lang, done.done.as_deref()))
        h1 { (run.project) " · " code { (run.revision.as_deref().unwrap_or("?")) } " " (badge(&run)) }
        div.card {
            dl.summary {
                dt { (lang.t(T::Run)) } dd { code #run-id { (run.run_id) } }
                dt { (lang.t(T::Started)) } dd { (when(run.started)) }
                dt { (lang.t(T::Duration)) } dd { (duration(&run)) }
                dt { (lang.t(T::ShippedBy)) } dd { (shipped_by(&run).unwrap_or_default()) }
                dt { (lang.t(T::Message)) } dd { (run.message.as_deref().unwrap_or("")) }
            }
            @if run.status == "waiting for approval" {
                h2 { (lang.t(T::PendingApprovals)) ": " (held_in(&run).unwrap_or("")) }
                (decide_forms(&signed, &run, held_in(&run)))
            }
        }
        h2 { (lang.t(T::Timeline)) }
        (timeline_svg(&bars(&run.events, chrono::Utc::now())))
        (decisions(lang, &run))
        @if let Some(envelopes) = &envelopes {
            (reports(lang, envelopes))
        } @else {
            p.muted { (lang.t(T::NoLedger)) }
        }
        (build_log(lang, envelopes.as_deref().unwrap_or_default(), whole_log.as_deref()))
        h2 { (lang.t(T::Events)) }
        table #events {
            tr { th { (lang.t(T::Time)) } th { (lang.t(T::Kind)) } th { (lang.t(T::Environment)) } th { (lang.t(T::Image)) } th { (lang.t(T::Detail)) } }
            @for l in &run.events {
                tr.event data-kind=(l.kind) {
                    td.mono { (l.time.format("%H:%M:%S%.3f")) }
                    td { code { (l.kind) } }
                    td { (l.environment.as_deref().unwrap_or("")) }
                    td { code { (short_image(l.image.as_deref().unwrap_or(""))) } }
                    td { (l.detail.as_deref().unwrap_or("")) }
                }
            }
        }
    };
    let live = run.run_id.to_string();
    let path = format!("/runs/{}", run.run_id);
    layout::respond(
        StatusCode::OK,
        layout::page(Some(&signed), lang, &run.project, &path, Some(&live), body),
    )
}

fn decisions(lang: Lang, run: &Run) -> Markup {
    let decided: Vec<_> = run
        .events
        .iter()
        .filter(|l| {
            matches!(
                l.kind,
                "approval.granted"
                    | "approval.rejected"
                    | "approval.expired"
                    | "deploy.rolled_back"
            ) || (l.kind == "deploy.requested" && l.detail.is_some())
        })
        .collect();
    html! {
        @if !decided.is_empty() {
            h2 { (lang.t(T::Decisions)) }
            table #decisions {
                @for l in decided {
                    tr { td.mono { (when(l.time)) } td { code { (l.kind) } } td { (l.environment.as_deref().unwrap_or("")) } td { (l.detail.as_deref().unwrap_or("")) } }
                }
            }
        }
    }
}

fn reports(lang: Lang, envelopes: &[Envelope]) -> Markup {
    let reports: Vec<(&Envelope, &TestReport, bool)> = envelopes
        .iter()
        .filter_map(|e| match &e.event {
            Event::TestPassed(r) => Some((e, r, true)),
            Event::TestFailed(f) => f.report.as_ref().map(|r| (e, r, false)),
            _ => None,
        })
        .collect();
    html! {
        @for (e, report, passed) in reports {
            h2 { (lang.t(T::TestReport)) ": " (e.environment.as_deref().unwrap_or("")) " "
                @if passed { span.badge.ok { (lang.t(T::Passed)) } } @else { span.badge.bad { (lang.t(T::FailedCheck)) } } }
            table.report {
                tr { th { (lang.t(T::Check)) } th { (lang.t(T::Result)) } th { "ms" } th { (lang.t(T::Detail)) } }
                @for c in &report.checks {
                    tr.check data-passed=(c.passed) {
                        td { (c.name) }
                        td { @if c.passed { span.badge.ok { (lang.t(T::Passed)) } } @else { span.badge.bad { (lang.t(T::FailedCheck)) } } }
                        td { (c.millis) }
                        td.mono { (c.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
            @if let Some(out) = &report.output { pre.log { (out) } }
        }
    }
}

/// The whole build log, as the builder stored it (scrubbed of every secret, capped at
/// `build.max_log_bytes`), where this service can read `build.log_dir`: in the shipped
/// compose file the builder's log volume is mounted here read-only. The path is built
/// from a parsed run id, never from input text.
async fn whole_build_log(app: &App, run_id: uuid::Uuid) -> Option<String> {
    let path = app
        .cfg
        .build
        .log_dir
        .join(run_id.to_string())
        .join("build.log");
    let bytes = tokio::fs::read(&path).await.ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The whole build log where it can be read; otherwise a failed build's cause (the end of
/// its log, scrubbed by the builder) and where the log is kept on the build host.
fn build_log(lang: Lang, envelopes: &[Envelope], whole: Option<&str>) -> Markup {
    let failed = envelopes.iter().find_map(|e| match &e.event {
        Event::BuildFailed(f) => Some(f.reason.as_str()),
        _ => None,
    });
    let kept = envelopes.iter().find_map(|e| match &e.event {
        Event::ImageBuilt(b) => b.build_log.as_deref(),
        _ => None,
    });
    html! {
        @if let Some(log) = whole {
            h2 { (lang.t(T::BuildLog)) }
            pre.log #build-log-whole { (log) }
        } @else if failed.is_some() || kept.is_some() {
            h2 { (lang.t(T::BuildLog)) }
            @if let Some(log) = failed { pre.log #build-log { (log) } }
            @if let Some(path) = kept { p #build-log-kept { (lang.t(T::BuildLogKept)) " " code { (path) } } }
        }
    }
}

const WIDTH: f64 = 1000.0;
const LABELS: f64 = 170.0;
const ROW: f64 = 24.0;

/// Bars on a time axis: one row per stage, failed stages in red, a wait in amber.
fn timeline_svg(bars: &[Bar]) -> Markup {
    let (Some(t0), Some(t1)) = (
        bars.iter().map(|b| b.from).min(),
        bars.iter().map(|b| b.to).max(),
    ) else {
        return html! { p.muted { "—" } };
    };
    let span = ((t1 - t0).num_milliseconds().max(1000)) as f64;
    let plot = WIDTH - LABELS - 70.0;
    let x = |t: chrono::DateTime<chrono::Utc>| {
        LABELS + (t - t0).num_milliseconds() as f64 / span * plot
    };
    let height = ROW * bars.len() as f64 + 30.0;
    html! {
        svg.timeline #timeline xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) viewBox={ "0 0 " (WIDTH) " " (height) } {
            @for i in 0..=4 {
                @let tx = LABELS + plot * f64::from(i) / 4.0;
                line.axis x1=(tx) x2=(tx) y1="0" y2=(height - 18.0) {}
                text x=(tx) y=(height - 4.0) text-anchor="middle" { "+" (format!("{:.0}s", span / 1000.0 * f64::from(i) / 4.0)) }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let y = ROW * i as f64 + 4.0;
                @let class = match b.outcome { Outcome::Passed => "passed", Outcome::Failed => "failed", Outcome::Open => "open", Outcome::Ended => "ended" };
                text x="6" y=(y + 12.0) { (b.stage) @if let Some(e) = &b.environment { " · " (e) } }
                rect class={ "bar " (class) } data-stage=(b.stage) x=(x(b.from)) y=(y) width=((x(b.to) - x(b.from)).max(3.0)) height="16" rx="3" {
                    title { (b.stage) " " (format!("{:.1}s", (b.to - b.from).num_milliseconds() as f64 / 1000.0)) }
                }
                text x=(x(b.to) + 6.0) y=(y + 12.0) { (format!("{:.1}s", (b.to - b.from).num_milliseconds() as f64 / 1000.0)) }
            }
        }
    }
}

//! `GET /` (what runs where, and what waits for approval) and `GET /runs` (the runs,
//! filtered).

use super::i18n::{Lang, T};
use super::{Signed, layout};
use crate::runs::{Run, shipped_by};
use crate::{App, older};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use ferry_shared::config::operators::{Access, Action};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

pub const PAGE_SIZE: usize = 50;

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An image reference short enough for a table: its digest or tag, without the
/// registry path.
pub fn short_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once("@sha256:") {
        Some((name, digest)) => format!("{name}@sha256:{}", &digest[..digest.len().min(12)]),
        None => last.to_owned(),
    }
}

/// How a run stands, for its badge and the status filter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Running,
    Waiting,
    Succeeded,
    Failed,
}

impl Standing {
    pub fn of(run: &Run) -> Standing {
        let s = run.status.as_str();
        if s == "running" {
            Standing::Running
        } else if s == "waiting for approval" {
            Standing::Waiting
        } else if s.contains(".failed")
            || s.starts_with("deploy.rolled_back")
            || s.starts_with("approval.rejected")
            || s.starts_with("approval.expired")
        {
            Standing::Failed
        } else {
            Standing::Succeeded
        }
    }

    fn parse(s: &str) -> Option<Standing> {
        Some(match s {
            "running" => Standing::Running,
            "waiting" => Standing::Waiting,
            "succeeded" => Standing::Succeeded,
            "failed" => Standing::Failed,
            _ => return None,
        })
    }

    fn code(self) -> &'static str {
        match self {
            Standing::Running => "running",
            Standing::Waiting => "waiting",
            Standing::Succeeded => "succeeded",
            Standing::Failed => "failed",
        }
    }

    fn words(self) -> T {
        match self {
            Standing::Running => T::Running,
            Standing::Waiting => T::Waiting,
            Standing::Succeeded => T::Succeeded,
            Standing::Failed => T::Failed,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Standing::Running => "badge run",
            Standing::Waiting => "badge wait",
            Standing::Succeeded => "badge ok",
            Standing::Failed => "badge bad",
        }
    }
}

pub fn badge(run: &Run) -> Markup {
    let standing = Standing::of(run);
    html! { span class=(standing.class()) title=(run.status) { (run.status) } }
}

/// The projects an operator may see, in name order.
pub fn visible<'a>(app: &'a App, access: &Access) -> Vec<&'a str> {
    app.cfg
        .projects
        .keys()
        .map(String::as_str)
        .filter(|p| access.allow(Action::View, p, None).is_ok())
        .collect()
}

/// The environment a waiting run is held before.
pub fn held_in(run: &Run) -> Option<&str> {
    run.events
        .iter()
        .rev()
        .find(|l| l.kind == "approval.requested")
        .and_then(|l| l.environment.as_deref())
}

/// Approve and reject, with a comment, for an operator allowed to.
pub fn decide_forms(signed: &Signed, run: &Run, env: Option<&str>) -> Markup {
    let lang = signed.lang;
    let allowed = signed
        .session
        .access
        .allow(Action::Approve, &run.project, env)
        .is_ok();
    html! {
        @if allowed {
            form.action.decide method="post" action={ "/runs/" (run.run_id) "/approve" } {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="text" name="comment" placeholder=(lang.t(T::Comment)) maxlength="500";
                button.primary.approve type="submit" formaction={ "/runs/" (run.run_id) "/approve" } { (lang.t(T::Approve)) }
                button.danger.reject type="submit" formaction={ "/runs/" (run.run_id) "/reject" } { (lang.t(T::Reject)) }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

pub fn flash(lang: Lang, done: Option<&str>) -> Markup {
    let text = match (done, lang) {
        (Some("approved"), Lang::En) => "Approved: the run goes on.",
        (Some("approved"), Lang::ZhCn) => "已批准：运行继续。",
        (Some("rejected"), Lang::En) => "Rejected: the run ends here.",
        (Some("rejected"), Lang::ZhCn) => "已拒绝：运行在此结束。",
        (Some("rollback"), Lang::En) => "Rollback requested.",
        (Some("rollback"), Lang::ZhCn) => "已请求回滚。",
        (Some("deploy"), Lang::En) => "Run started.",
        (Some("deploy"), Lang::ZhCn) => "已开始运行。",
        _ => return html! {},
    };
    html! { p #flash.flash { (text) } }
}

pub async fn environments(
    State(app): State<Arc<App>>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Response {
    let lang = signed.lang;
    let access = signed.session.access.clone();
    let projects = visible(&app, &access);
    let (waiting, _) = app.runs.page(
        |r| projects.contains(&r.project.as_str()) && Standing::of(r) == Standing::Waiting,
        0,
        200,
    );
    let body = html! {
        (flash(lang, done.done.as_deref()))
        h1 { (lang.t(T::PendingApprovals)) }
        @if waiting.is_empty() {
            p.muted #no-approvals { (lang.t(T::NoPendingApprovals)) }
        } @else {
            table #approvals {
                tr { th { (lang.t(T::Run)) } th { (lang.t(T::Project)) } th { (lang.t(T::Environment)) } th { (lang.t(T::Revision)) } th { (lang.t(T::Author)) } th {} }
                @for run in &waiting {
                    tr data-run=(run.run_id) {
                        td { a href={ "/runs/" (run.run_id) } { code { (run.run_id.to_string()[..8]) } } }
                        td { (run.project) }
                        td { (held_in(run).unwrap_or("")) }
                        td { code { (run.revision.as_deref().unwrap_or("")) } }
                        td { (shipped_by(run).unwrap_or_default()) }
                        td { (decide_forms(&signed, run, held_in(run))) }
                    }
                }
            }
        }
        h1.section { (lang.t(T::Environments)) }
        @for project in &projects {
            (project_card(&app, &signed, project))
        }
    };
    layout::respond(
        StatusCode::OK,
        layout::page(
            Some(&signed),
            lang,
            lang.t(T::Environments),
            "/",
            Some("*"),
            body,
        ),
    )
}

fn project_card(app: &App, signed: &Signed, project: &str) -> Markup {
    let lang = signed.lang;
    let access = &signed.session.access;
    let deployments = app.runs.deployments(project);
    let envs: Vec<String> = app
        .cfg
        .projects
        .get(project)
        .map(|p| p.environments.clone())
        .unwrap_or_default();
    let may_deploy = access.allow(Action::Deploy, project, None).is_ok();
    html! {
        section.card.project id={ "project-" (project) } {
            h2 { (project) }
            table.environments {
                tr {
                    th { (lang.t(T::Environment)) } th { (lang.t(T::Revision)) } th { (lang.t(T::Image)) }
                    th { (lang.t(T::Hosts)) } th { (lang.t(T::Since)) } th { (lang.t(T::ShippedBy)) } th {}
                }
                @for env in &envs {
                    @let now = deployments.iter().find(|d| &d.environment == env);
                    tr data-environment=(env) {
                        td { strong { (env) } }
                        @if let Some(d) = now {
                            td.revision { a href={ "/runs/" (d.run_id) } { code { (d.revision.as_deref().unwrap_or("?")) } } }
                            td { code title=(d.image.as_deref().unwrap_or("")) { (short_image(d.image.as_deref().unwrap_or(""))) } }
                            td { (d.hosts.join(", ")) }
                            td { (when(d.since)) @if d.rolled_back { " " span.badge.wait { "rollback" } } }
                            td { (d.shipped_by.as_deref().unwrap_or("")) }
                        } @else {
                            td colspan="5" .muted { (lang.t(T::Nothing)) }
                        }
                        td {
                            @if access.allow(Action::Rollback, project, Some(env)).is_ok() && now.is_some() {
                                form.action.rollback method="post" action={ "/projects/" (project) "/rollback" } {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    input type="hidden" name="environment" value=(env);
                                    input type="text" name="to" size="10" placeholder=(lang.t(T::Revision)) title=(lang.t(T::RollBackHelp));
                                    button.danger type="submit" { (lang.t(T::RollBack)) }
                                }
                            }
                        }
                    }
                }
            }
            @if may_deploy {
                form.action.deploy method="post" action={ "/projects/" (project) "/deploy" } {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    input type="text" name="revision" size="14" placeholder=(lang.t(T::Revision)) title=(lang.t(T::DeployHelp)) required;
                    button type="submit" { (lang.t(T::Deploy)) }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RunFilter {
    project: Option<String>,
    environment: Option<String>,
    status: Option<String>,
    q: Option<String>,
    #[serde(default)]
    skip: usize,
    /// Past memory's end: the ledger's runs older than this cursor (`older::Cursor`).
    before: Option<String>,
}

impl RunFilter {
    fn keeps(&self, run: &Run, visible: &[&str]) -> bool {
        fn given(o: &Option<String>) -> Option<&str> {
            o.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        if !visible.contains(&run.project.as_str()) {
            return false;
        }
        if given(&self.project).is_some_and(|p| p != run.project) {
            return false;
        }
        if let Some(env) = given(&self.environment)
            && !run
                .events
                .iter()
                .any(|l| l.environment.as_deref() == Some(env))
        {
            return false;
        }
        if let Some(s) = given(&self.status).and_then(Standing::parse)
            && Standing::of(run) != s
        {
            return false;
        }
        if let Some(q) = given(&self.q) {
            let q = q.to_lowercase();
            let has =
                |o: &Option<String>| o.as_deref().is_some_and(|v| v.to_lowercase().contains(&q));
            if !(has(&run.revision)
                || has(&run.author)
                || has(&run.message)
                || run.run_id.to_string().starts_with(&q))
            {
                return false;
            }
        }
        true
    }

    fn query(&self, skip: usize) -> String {
        self.query_from(skip, None)
    }

    /// The filter's query, at `skip` in memory or, with `before`, in the ledger.
    fn query_from(&self, skip: usize, before: Option<crate::older::Cursor>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("project", &self.project),
            ("environment", &self.environment),
            ("status", &self.status),
            ("q", &self.q),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        if skip > 0 {
            q.append_pair("skip", &skip.to_string());
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        q.finish()
    }
}

pub fn duration(run: &Run) -> String {
    let last = run
        .events
        .iter()
        .map(|l| l.time)
        .max()
        .unwrap_or(run.started);
    let s = (last - run.started).num_seconds().max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The projects to read older runs of: the filter's, or every one the operator sees.
fn ledger_projects(filter: &RunFilter, visible: &[&str]) -> Vec<String> {
    match filter
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) if visible.contains(&p) => vec![p.to_owned()],
        Some(_) => Vec::new(),
        None => visible.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// Where the ledger's older runs start when memory's list is at its end, if the ledger
/// holds any run older than memory's oldest (of the projects asked for).
async fn older_page_start(
    app: &App,
    filter: &RunFilter,
    visible: &[&str],
) -> Option<older::Cursor> {
    let ledger = app.ledger.get()?;
    let end = older::memory_end(app);
    let wanted = ledger_projects(filter, visible);
    let run = end.run.to_string();
    let probe = ledger.runs_before(&wanted, (end.ms, &run), 1);
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(rows)) if !rows.is_empty() => Some(end),
        _ => None,
    }
}

pub async fn runs(
    State(app): State<Arc<App>>,
    signed: Signed,
    Query(filter): Query<RunFilter>,
) -> Response {
    let lang = signed.lang;
    let projects = visible(&app, &signed.session.access);
    let skip = filter.skip.min(100_000);
    let before = filter.before.as_deref().and_then(older::Cursor::parse);
    // Memory's newest runs first; past their end, the ledger's, a page at a time.
    let (page, more, older) = match before {
        None => {
            let (page, more) = app
                .runs
                .page(|r| filter.keeps(r, &projects), skip, PAGE_SIZE);
            let older = if more {
                None
            } else {
                older_page_start(&app, &filter, &projects).await
            };
            (page, more, older)
        }
        Some(cursor) => {
            let wanted = ledger_projects(&filter, &projects);
            match older::runs(
                &app,
                &wanted,
                cursor,
                |r| filter.keeps(r, &projects),
                PAGE_SIZE,
            )
            .await
            {
                Ok((page, next)) => (page, false, next),
                Err(e) => {
                    let why = format!(
                        "Older runs could not be read from the ledger: {e}. Try again shortly."
                    );
                    return layout::problem(lang, StatusCode::SERVICE_UNAVAILABLE, &why);
                }
            }
        }
    };
    let environments: Vec<&String> = app.cfg.environments.keys().collect();
    let chosen = |o: &Option<String>, v: &str| o.as_deref() == Some(v);
    let body = html! {
        h1 { (lang.t(T::Runs)) }
        form.filters #filters method="get" action="/runs" {
            select name="project" {
                option value="" { (lang.t(T::Project)) ": " (lang.t(T::All)) }
                @for p in &projects { option value=(p) selected[chosen(&filter.project, p)] { (p) } }
            }
            select name="environment" {
                option value="" { (lang.t(T::Environment)) ": " (lang.t(T::All)) }
                @for e in &environments { option value=(e) selected[chosen(&filter.environment, e)] { (e) } }
            }
            select name="status" {
                option value="" { (lang.t(T::Status)) ": " (lang.t(T::All)) }
                @for s in [Standing::Running, Standing::Waiting, Standing::Succeeded, Standing::Failed] {
                    option value=(s.code()) selected[chosen(&filter.status, s.code())] { (lang.t(s.words())) }
                }
            }
            input type="text" name="q" value=(filter.q.as_deref().unwrap_or("")) placeholder=(lang.t(T::Search)) size="28";
            button type="submit" { (lang.t(T::Filter)) }
        }
        table #runs {
            tr {
                th { (lang.t(T::Run)) } th { (lang.t(T::Project)) } th { (lang.t(T::Revision)) } th { (lang.t(T::Author)) }
                th { (lang.t(T::Message)) } th { (lang.t(T::Status)) } th { (lang.t(T::Started)) } th { (lang.t(T::Duration)) }
            }
            @for run in &page {
                tr.run data-run=(run.run_id) {
                    td { a href={ "/runs/" (run.run_id) } { code { (run.run_id.to_string()[..8]) } } }
                    td { (run.project) }
                    td { code { (run.revision.as_deref().unwrap_or("")) } }
                    td { (shipped_by(run).unwrap_or_default()) }
                    td.muted { (run.message.as_deref().unwrap_or("")) }
                    td { (badge(run)) }
                    td { (when(run.started)) }
                    td { (duration(run)) }
                }
            }
        }
        div.pager {
            @if skip > 0 && before.is_none() { a #newer href={ "/runs?" (filter.query(skip.saturating_sub(PAGE_SIZE))) } { "← " (lang.t(T::Newer)) } }
            @if before.is_some() { a #newest href={ "/runs?" (filter.query(0)) } { "← " (lang.t(T::Newer)) } }
            @if more { a #older href={ "/runs?" (filter.query(skip + PAGE_SIZE)) } { (lang.t(T::Older)) " →" } }
            @if let Some(c) = older { a #older href={ "/runs?" (filter.query_from(0, Some(c))) } { (lang.t(T::Older)) " →" } }
        }
    };
    let path = format!("/runs?{}", filter.query_from(skip, before));
    layout::respond(
        StatusCode::OK,
        layout::page(Some(&signed), lang, lang.t(T::Runs), &path, Some("*"), body),
    )
}

//! The web dashboard at `/` of the operator API's address: what runs where, the runs
//! with their timelines, and (for signed-in operators, within their scopes) approve,
//! reject, roll back and deploy. Server-rendered HTML (maud) with one small script
//! for live updates (server-sent events); the CSS and script are compiled into the
//! binary, so there is no front-end build.
//!
//! Every page needs a session (`session`): an operator signs in with their token once.
//! Actions are forms that post a CSRF token and go through the same code as the
//! operator API, so scopes and rules are the API's.

mod actions;
mod delivery_page;
pub use delivery_page::Cache as DeliveryCache;
pub mod i18n;
mod layout;
pub mod live;
mod login;
mod pages;
mod run_page;
pub mod session;
pub mod timeline;

use crate::App;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use i18n::Lang;
use session::Session;
use std::sync::Arc;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(pages::environments))
        .route("/runs", get(pages::runs))
        .route("/delivery", get(delivery_page::show))
        .route("/runs/{run}", get(run_page::show))
        .route("/runs/{run}/approve", post(actions::approve))
        .route("/runs/{run}/reject", post(actions::reject))
        .route("/projects/{project}/rollback", post(actions::rollback))
        .route("/projects/{project}/deploy", post(actions::deploy))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/lang/{code}", get(login::language))
        .route("/live", get(live::stream))
        .route("/assets/dashboard.css", get(layout::css))
        .route("/assets/dashboard.js", get(layout::js))
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| cookie::Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A signed-in operator, with the language and CSRF token of the page.
pub struct Signed {
    pub session: Session,
    pub lang: Lang,
    pub csrf: String,
}

/// No session: pages send the browser to the sign-in page; actions are refused.
pub enum NotSigned {
    Page(String),
    Action(Lang),
    Disabled,
}

impl IntoResponse for NotSigned {
    fn into_response(self) -> Response {
        match self {
            NotSigned::Page(next) => {
                let next: String =
                    form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("/login?next={next}")).into_response()
            }
            NotSigned::Action(lang) => layout::problem(
                lang,
                StatusCode::UNAUTHORIZED,
                "not signed in (or the session ended): sign in again, then repeat the action",
            ),
            NotSigned::Disabled => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({
                    "error": "the dashboard is disabled: add an [operators.<name>] entry with a token to sign in with"
                })),
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<Arc<App>> for Signed {
    type Rejection = NotSigned;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, NotSigned> {
        if app.operators.is_empty() {
            return Err(NotSigned::Disabled);
        }
        let lang = Lang::of(&parts.headers);
        let session = cookie(&parts.headers, session::COOKIE)
            .and_then(|c| app.sessions.check(&c, &app.operators));
        match session {
            Some(session) => Ok(Signed {
                csrf: app.sessions.csrf(&session),
                session,
                lang,
            }),
            None if parts.method == axum::http::Method::GET => Err(NotSigned::Page(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            )),
            None => Err(NotSigned::Action(lang)),
        }
    }
}

/// A path of this site to go back to (never another site's: `//x` and `/\x` are).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

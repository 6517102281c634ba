//! The frame every page shares, and the bundled CSS and script.

use super::Signed;
use super::i18n::{Lang, T};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

/// Pages must not be framed by another site, nor cached, nor run anything but our
/// own script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub fn respond(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(page.into_string()),
    )
        .into_response()
}

/// A whole page: header with navigation, language switch and sign-out, then `body`.
/// `live` is what the page follows: `*` for any run, a run id, or nothing.
pub fn page(
    signed: Option<&Signed>,
    lang: Lang,
    title: &str,
    path: &str,
    live: Option<&str>,
    body: Markup,
) -> Markup {
    let back: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ferry" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body data-live=[live] {
                header {
                    a.brand href="/" { "Ferry" }
                    @if signed.is_some() {
                        nav {
                            a #nav-environments href="/" { (lang.t(T::Environments)) }
                            a #nav-runs href="/runs" { (lang.t(T::Runs)) }
                            a #nav-delivery href="/delivery" { (lang.t(T::Delivery)) }
                        }
                    }
                    div.right {
                        span #live.live hidden { "● " (lang.t(T::Live)) }
                        a #lang href={ "/lang/" (lang.other().code()) "?next=" (back) } { (lang.t(T::Language)) }
                        @if let Some(s) = signed {
                            span.who { (lang.t(T::SignedInAs)) " " strong #operator { (s.session.access.name) } }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button #sign-out type="submit" { (lang.t(T::SignOut)) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that says what went wrong and what to do, with `status`.
pub fn problem(lang: Lang, status: StatusCode, why: &str) -> Response {
    let body = html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or_default()) }
        p #problem.problem { (why) }
        p { a href="/" { (lang.t(T::Environments)) } }
    };
    respond(status, page(None, lang, "Ferry", "/", None, body))
}

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
}

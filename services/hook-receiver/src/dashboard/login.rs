//! Signing in with an operator token, signing out, and the language switch.

use super::i18n::{self, Lang, T};
use super::session::COOKIE;
use super::{Signed, layout, local_path};
use crate::App;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// The fields of a form post (`application/x-www-form-urlencoded`), at most 64 KiB.
pub async fn form_fields(body: axum::body::Body) -> Option<HashMap<String, String>> {
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.ok()?;
    Some(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// Whether a post comes from a page of this site: a browser names the page's origin
/// in `Origin` on every cross-site post, so one naming another host is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn set_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> HeaderValue {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_s.cast_signed()))
        .secure(secure)
        .build()
        .to_string();
    if max_age_s == 0 {
        c.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Cookies are `Secure` when the browser reached Ferry over HTTPS (its own TLS, or a
/// proxy that says so).
fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.cfg.service(crate::SERVICE).tls_cert.is_some()
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn login_page(lang: Lang, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        div.login.card {
            h1 { (lang.t(T::SignIn)) }
            @if let Some(e) = error { p #problem.problem { (e) } }
            form #login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { (lang.t(T::Token)) }
                input #token type="password" name="token" autocomplete="current-password" autofocus;
                p.muted { (lang.t(T::TokenHelp)) }
                button.primary #sign-in type="submit" { (lang.t(T::SignIn)) }
            }
        }
    };
    layout::respond(
        status,
        layout::page(None, lang, lang.t(T::SignIn), "/login", None, body),
    )
}

pub async fn form(headers: HeaderMap, Query(q): Query<Next>) -> Response {
    login_page(
        Lang::of(&headers),
        &local_path(q.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

pub async fn sign_in(State(app): State<Arc<App>>, request: Request) -> Response {
    let lang = Lang::of(request.headers());
    if app.operators.is_empty() {
        return layout::problem(
            lang,
            StatusCode::NOT_FOUND,
            "the dashboard is disabled: add an [operators.<name>] entry with a token",
        );
    }
    if !same_origin(request.headers()) {
        return layout::problem(lang, StatusCode::FORBIDDEN, "a sign-in from another site");
    }
    // Token guessing is limited as on the API: failures per client address.
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| app.proxies.client(c.0.ip(), request.headers()));
    if let Some(left) = peer.and_then(|ip| app.auth_limit.blocked(ip)) {
        let (_, why) = crate::auth_limit::refusal(left, "check your operator token");
        return login_page(lang, "/", Some(&why), StatusCode::TOO_MANY_REQUESTS);
    }
    let secure = secure(&app, request.headers());
    let Some(fields) = form_fields(request.into_body()).await else {
        return login_page(
            lang,
            "/",
            Some("the form could not be read"),
            StatusCode::BAD_REQUEST,
        );
    };
    let next = local_path(fields.get("next").map(String::as_str));
    let token = fields.get("token").map_or("", |t| t.trim());
    let Some(access) = app.operators.find(token) else {
        if let Some(ip) = peer {
            app.auth_limit.failed(ip);
        }
        tracing::info!(peer = ?peer, "dashboard sign-in refused: unknown token");
        let why = "this is not an operator's token: check it against [operators]";
        return login_page(lang, &next, Some(why), StatusCode::UNAUTHORIZED);
    };
    let Some((fingerprint, _)) = app.operators.by_name(&access.name) else {
        return login_page(
            lang,
            &next,
            Some("unknown operator"),
            StatusCode::UNAUTHORIZED,
        );
    };
    let Some(value) = app.sessions.issue(&access, &fingerprint) else {
        let why = "no session key: set dashboard.session_secret (see the hook-receiver's log)";
        return login_page(lang, &next, Some(why), StatusCode::SERVICE_UNAVAILABLE);
    };
    tracing::info!(operator = %access.name, "signed in to the dashboard");
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(COOKIE, &value, app.sessions.lifetime().as_secs(), secure),
    );
    response
}

pub async fn sign_out(State(app): State<Arc<App>>, signed: Signed, request: Request) -> Response {
    let secure = secure(&app, request.headers());
    let fields = form_fields(request.into_body()).await.unwrap_or_default();
    if !app.sessions.csrf_ok(
        &signed.session,
        fields.get("csrf").map_or("", String::as_str),
    ) {
        return layout::problem(
            signed.lang,
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again",
        );
    }
    tracing::info!(operator = %signed.session.access.name, "signed out of the dashboard");
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(COOKIE, "", 0, secure));
    response
}

/// `GET /lang/<code>?next=<path>`: remember the language, then go back.
pub async fn language(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    Query(q): Query<Next>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return layout::problem(
            Lang::of(&headers),
            StatusCode::NOT_FOUND,
            "no such language: use en or zh-CN",
        );
    };
    let mut response = Redirect::to(&local_path(q.next.as_deref())).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            i18n::COOKIE,
            lang.code(),
            365 * 24 * 3600,
            secure(&app, &headers),
        ),
    );
    response
}

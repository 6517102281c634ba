//! The dashboard over real HTTP, against the real RabbitMQ: no page without a session
//! and no action without a session and its CSRF token (nothing published, the hold
//! stays); sign-in cookies are HttpOnly and SameSite; an operator acts only within
//! their scopes; the pages show what the events (and the ledger) say, in English and
//! Chinese.

mod common;

use common::dashboard::*;

use ferry_shared::bus::{Publisher, hold};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event};
use ferry_testkit::{Tap, amqp_url, queue_len, unique_namespace};
use std::net::SocketAddr;
use std::time::Duration;
use uuid::Uuid;

const QUIET: Duration = Duration::from_millis(500);

struct Browserless {
    base: String,
    http: reqwest::Client,
}

/// A reply: status, `Location`, `Set-Cookie` values, body.
struct Reply {
    status: u16,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

impl Browserless {
    fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.unwrap();
        let header = |n: &str| {
            r.headers()
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        Reply {
            status: r.status().as_u16(),
            location: header("location").into_iter().next(),
            cookies: header("set-cookie"),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req).await
    }

    /// Signs in; the `name=value` of the session cookie.
    async fn sign_in(&self, token: &str) -> String {
        let r = self
            .post("/login", None, &[("token", token), ("next", "/")])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r
            .cookies
            .iter()
            .find(|c| c.starts_with("ferry_session="))
            .expect("no session cookie");
        set.split(';').next().unwrap().to_owned()
    }
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("no CSRF field on the page");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The dashboard page at `path` once it contains `needle` (the history is read
/// asynchronously), within 10 s.
async fn page_with(web: &Browserless, path: &str, cookie: &str, needle: &str) -> String {
    let mut page = String::new();
    for _ in 0..100 {
        page = web.get(path, Some(cookie)).await.body;
        if page.contains(needle) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed {needle}: {page}");
}

async fn still_held(cfg: &FerryConfig, run: Uuid, env: &str) -> bool {
    let queue = hold::queue_name(&cfg.broker.namespace, run, env);
    queue_len(&amqp_url(), &queue).await.unwrap() == 1
}

async fn nothing_published(tap: &mut Tap, what: &str) {
    let published = tap.drain(QUIET).await;
    assert!(
        published.is_empty(),
        "{what} published: {:?}",
        published
            .iter()
            .map(Envelope::routing_key)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn without_a_session_and_its_csrf_token_no_page_shows_and_no_action_does_anything() {
    let ns = unique_namespace();
    let cfg = config(&ns, "");
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let web = Browserless::new(rx.addr);
    let run = held(&cfg, "shop", "production").await;

    // No session: the pages send the browser to sign in, actions are refused.
    let r = web.get("/runs?status=failed", None).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/login?next=%2Fruns%3Fstatus%3Dfailed")
    );
    let r = web
        .post(&format!("/runs/{run}/approve"), None, &[("comment", "go")])
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    // A wrong token: no cookie.
    let r = web
        .post("/login", None, &[("token", "not-a-token-0123456789")])
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.cookies.iter().all(|c| !c.starts_with("ferry_session")),
        "{:?}",
        r.cookies
    );

    // A good one: a cookie scripts cannot read and other sites cannot send.
    let r = web
        .post(
            "/login",
            None,
            &[("token", ALICE), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"), "an open redirect");
    let set = r
        .cookies
        .iter()
        .find(|c| c.starts_with("ferry_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let session = set.split(';').next().unwrap().to_owned();
    let page = page_with(&web, "/", &session, &run.to_string()).await;
    let token = csrf(&page);
    tap.drain(QUIET).await;

    // A session without the page's CSRF token, or with another's, or a post from
    // another site: refused.
    let path = format!("/runs/{run}/approve");
    let r = web.post(&path, Some(&session), &[("comment", "go")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let other = web.sign_in(ALICE).await;
    let theirs = csrf(&web.get("/", Some(&other)).await.body);
    let r = web.post(&path, Some(&session), &[("csrf", &theirs)]).await;
    assert_eq!(r.status, 403, "another session's token was taken");
    let r = web
        .send(
            web.http
                .post(format!("{}{path}", web.base))
                .header("cookie", &session)
                .header("origin", "http://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf={}", urlencode(&token))),
        )
        .await;
    assert_eq!(r.status, 403, "a cross-site post was taken");
    // A forged or tampered cookie is no session.
    let forged = session.replacen('|', "|x", 1);
    assert_eq!(web.get("/", Some(&forged)).await.status, 303);
    nothing_published(&mut tap, "a refused action").await;
    assert!(
        still_held(&cfg, run, "production").await,
        "the hold was taken"
    );

    // Signed out, the cookie no longer works... for the browser (it is told to drop
    // it); a stolen copy lasts until it expires, like any bearer session.
    let r = web
        .post("/logout", Some(&session), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 303);
    assert!(
        r.cookies
            .iter()
            .any(|c| c.starts_with("ferry_session=;") || c.contains("Max-Age=0")),
        "{:?}",
        r.cookies
    );
    rx.stop().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_operator_approves_only_within_their_scope_and_the_decision_names_them() {
    let ns = unique_namespace();
    let cfg = config(&ns, "");
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let web = Browserless::new(rx.addr);
    let books = held(&cfg, "books", "production").await;
    let shop = held(&cfg, "shop", "production").await;
    tap.drain(QUIET).await;

    // bob sees shop, not books, and cannot approve books by posting anyway.
    let bob = web.sign_in(BOB).await;
    let page = page_with(&web, "/", &bob, &shop.to_string()).await;
    assert!(
        page.contains("project-shop") && !page.contains("project-books"),
        "bob sees books"
    );
    let token = csrf(&page);
    let r = web
        .post(
            &format!("/runs/{books}/approve"),
            Some(&bob),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("books"),
        "the refusal does not say what is missing: {}",
        r.body
    );
    nothing_published(&mut tap, "bob's approval of books").await;
    assert!(still_held(&cfg, books, "production").await);

    // viewer has no approve button, and a post is refused.
    let viewer = web.sign_in(VIEWER).await;
    let page = web.get("/", Some(&viewer)).await.body;
    assert!(!page.contains("/approve"), "viewer is offered approve");
    let r = web
        .post(
            &format!("/runs/{shop}/approve"),
            Some(&viewer),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(r.status, 403);

    // bob approves shop with a comment: the run's page, and an event naming him.
    let r = web
        .post(
            &format!("/runs/{shop}/approve"),
            Some(&bob),
            &[("csrf", &token), ("comment", "looks good")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location, Some(format!("/runs/{shop}?done=approved")));
    let e = tap
        .next(Duration::from_secs(5))
        .await
        .expect("no decision published");
    match &e.event {
        Event::ApprovalGranted(d) => {
            assert_eq!(d.by, "bob");
            assert_eq!(d.comment.as_deref(), Some("looks good"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!still_held(&cfg, shop, "production").await);
    // alice rejects books.
    let alice = web.sign_in(ALICE).await;
    let token = csrf(&web.get("/", Some(&alice)).await.body);
    let r = web
        .post(
            &format!("/runs/{books}/reject"),
            Some(&alice),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let e = tap.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(e.kind(), "approval.rejected");
    rx.stop().await;
}

#[tokio::test]
async fn the_pages_show_what_runs_where_the_runs_and_a_failed_run_s_timeline_in_two_languages() {
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &ns,
        &format!(
            "[ledger]\n        url = \"sqlite://{}/ledger.db\"",
            dir.path().display()
        ),
    );
    let _tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let web = Browserless::new(rx.addr);
    let events = a_run("shop");
    let run: Uuid = events[0].run_id.into();
    let publisher = Publisher::new(&cfg.broker, "test", None);
    for e in &events {
        publisher.publish(e).await.unwrap();
    }
    let alice = web.sign_in(ALICE).await;
    // The run: a bar per stage, the failed test in red.
    // From the ledger: the failed check's expected and actual values, the build log.
    let page = page_with(
        &web,
        &format!("/runs/{run}"),
        &alice,
        "expected status 200, got 500",
    )
    .await;
    assert!(
        page.contains("/var/lib/ferry/logs/shop/7.log"),
        "no build log"
    );
    for stage in ["build", "push", "pull", "deploy", "test"] {
        assert!(
            page.contains(&format!("data-stage=\"{stage}\"")),
            "no {stage} bar"
        );
    }
    assert!(
        page.contains("class=\"bar failed\" data-stage=\"test\""),
        "the failed test is not red"
    );
    assert!(page.contains("checkout in one step") && page.contains("zoe"));
    // Environments: what each runs now, and where. The page reads the
    // replica's memory, which its own consumer fills apart from the ledger
    // the run page read, so it may lag a moment behind.
    let home = page_with(&web, "/", &alice, "production-h1").await;
    assert!(
        home.contains("production-h1") && home.contains("staging-h1"),
        "{home}"
    );
    assert!(home.contains("shop:7@sha256:bbbbbbbbbbbb"));
    // The list and its filters.
    page_with(
        &web,
        "/runs?status=failed&project=shop",
        &alice,
        &run.to_string(),
    )
    .await;
    let running = web.get("/runs?status=running", Some(&alice)).await.body;
    assert!(
        !running.contains(&run.to_string()),
        "a failed run listed as running"
    );
    let by_author = web.get("/runs?q=ZOE", Some(&alice)).await.body;
    assert!(by_author.contains(&run.to_string()));
    // Chinese: the switch remembers it in a cookie.
    let r = web.get("/lang/zh-CN?next=/runs", Some(&alice)).await;
    assert_eq!(r.location.as_deref(), Some("/runs"));
    let lang = r.cookies[0].split(';').next().unwrap().to_owned();
    let both = format!("{alice}; {lang}");
    let zh = web.get("/", Some(&both)).await.body;
    assert!(
        zh.contains("lang=\"zh-CN\"") && zh.contains("待审批") && zh.contains("环境"),
        "{zh}"
    );
    rx.stop().await;
}

#[tokio::test]
async fn a_run_page_shows_the_whole_build_log_escaped_and_a_hostile_commit_message_as_text() {
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let cfg = config(
        &ns,
        &format!(
            "[ledger]\n        url = \"sqlite://{}/ledger.db\"\n        [build]\n        log_dir = \"{}\"",
            dir.path().display(),
            logs.display()
        ),
    );
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let web = Browserless::new(rx.addr);
    let mut events = a_run("shop");
    // A developer's commit writes what it likes into its message and its build output.
    if let ferry_shared::event::Event::SourceChanged(s) = &mut events[0].event {
        s.message = Some("<script>alert('commit')</script>".into());
    }
    let run: Uuid = events[0].run_id.into();
    // Where the builder stores the log (`build.log_dir/<run>/build.log`), scrubbed.
    std::fs::create_dir_all(logs.join(run.to_string())).unwrap();
    std::fs::write(
        logs.join(run.to_string()).join("build.log"),
        "Step 1/7 : FROM php:8.2-fpm\nStep 4/7 : RUN composer install\n<img src=x onerror=alert('log')>\nSuccessfully built 0123abcd\n",
    )
    .unwrap();
    let publisher = Publisher::new(&cfg.broker, "test", None);
    for e in &events {
        publisher.publish(e).await.unwrap();
    }
    let alice = web.sign_in(ALICE).await;
    let page = page_with(&web, &format!("/runs/{run}"), &alice, "build-log-whole").await;
    assert!(
        page.contains("Step 4/7 : RUN composer install") && page.contains("Successfully built"),
        "the whole log: {page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert('log')&gt;") && !page.contains("<img src=x"),
        "the log's markup is shown as text"
    );
    assert!(
        page.contains("&lt;script&gt;alert('commit')&lt;/script&gt;")
            && !page.contains("<script>alert"),
        "the commit message's markup is shown as text"
    );
    // A run without a stored log names where the builder kept it, as before.
    let other = a_run("shop");
    let other_run: Uuid = other[0].run_id.into();
    for e in &other {
        publisher.publish(e).await.unwrap();
    }
    let page = page_with(
        &web,
        &format!("/runs/{other_run}"),
        &alice,
        "/var/lib/ferry/logs/shop/7.log",
    )
    .await;
    assert!(!page.contains("build-log-whole"));
    rx.stop().await;
}

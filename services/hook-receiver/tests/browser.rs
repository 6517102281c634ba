//! The dashboard in a real headless Chromium (the harness's chromedriver): an operator
//! signs in, watches a run go through live, approves a held run, rolls back, reads a
//! failed test's details and switches to Chinese; a viewer is offered no action and
//! the pages say so without a session. Screenshots of the main pages are saved into
//! `FERRY_SCREENSHOTS_DIR` (default: a temporary directory) for the README.

mod common;

use common::dashboard::*;
use ferry_shared::bus::Publisher;
use ferry_shared::event::Event;
use ferry_testkit::browser::{self, Browser};
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn shots() -> PathBuf {
    std::env::var_os("FERRY_SCREENSHOTS_DIR").map_or_else(
        || std::env::temp_dir().join("ferry-screenshots"),
        PathBuf::from,
    )
}

async fn sign_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/")).await.unwrap();
    // No session: the sign-in page.
    b.wait_for_text("h1", "Sign in", WAIT).await.unwrap();
    b.fill("#token", token).await.unwrap();
    b.click("#sign-in").await.unwrap();
    b.wait_for_text("#operator", "", WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_signs_in_watches_a_run_live_approves_rolls_back_and_reads_in_chinese() {
    let ns = unique_namespace();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &ns,
        &format!(
            "[ledger]\nurl = \"sqlite://{}/ledger.db\"",
            dir.path().display()
        ),
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let base = format!("http://{}", rx.addr);
    let publisher = Publisher::new(&cfg.broker, "test", None);
    // A run that failed its production tests, and one held before production.
    let failed = a_run("shop");
    for e in &failed {
        publisher.publish(e).await.unwrap();
    }
    let failed_id = failed[0].run_id;

    let b = browser::open().await.unwrap();
    b.goto(&format!("{base}/login")).await.unwrap();
    b.screenshot(shots().join("sign-in.png")).await.unwrap();
    sign_in(&b, &base, ALICE).await;
    assert_eq!(b.text("#operator").await.unwrap(), "alice");
    // The session cookie is not for scripts.
    let script_sees: String = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!script_sees.contains("ferry_session"), "{script_sees}");

    // Live: the page of a run in flight follows it without a reload by hand.
    let live = a_run("books");
    for e in &live[..3] {
        publisher.publish(e).await.unwrap();
    }
    let live_id = live[0].run_id;
    b.goto(&format!("{base}/runs/{live_id}")).await.unwrap();
    b.wait_for_text("#events", "image.pushed", WAIT)
        .await
        .unwrap();
    b.wait_for_text("#live", "live", WAIT).await.unwrap();
    for e in &live[3..] {
        publisher.publish(e).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    b.wait_for_text("#events", "test.failed", WAIT)
        .await
        .unwrap();

    // A failed test's details: which check, what was expected, what came back.
    b.goto(&format!("{base}/runs/{failed_id}")).await.unwrap();
    let report = b
        .wait_for_text("table.report", "expected status 200, got 500", WAIT)
        .await
        .unwrap();
    assert!(report.contains("GET /cart"), "{report}");
    b.screenshot(shots().join("run.png")).await.unwrap();

    // Approve a held run with a comment.
    let held_run = held(&cfg, "shop", "production").await;
    b.goto(&format!("{base}/")).await.unwrap();
    b.wait_for_text("#approvals", &held_run.to_string()[..8], WAIT)
        .await
        .unwrap();
    b.screenshot(shots().join("environments.png"))
        .await
        .unwrap();
    b.fill("#approvals input[name=comment]", "ship it")
        .await
        .unwrap();
    b.click("#approvals button.approve").await.unwrap();
    b.wait_for_text("#flash", "Approved", WAIT).await.unwrap();
    let decided = loop {
        let e = tap.next(WAIT).await.expect("no approval published");
        if let Event::ApprovalGranted(d) = &e.event {
            break d.clone();
        }
    };
    assert_eq!(
        (decided.by.as_str(), decided.comment.as_deref()),
        ("alice", Some("ship it"))
    );

    // Roll staging back: a rollback run requested by alice.
    b.goto(&format!("{base}/")).await.unwrap();
    b.wait_for_text("#project-shop", "staging-h1", WAIT)
        .await
        .unwrap();
    b.click("#project-shop tr[data-environment=staging] form.rollback button")
        .await
        .unwrap();
    b.wait_for_text("#flash", "Rollback requested", WAIT)
        .await
        .unwrap();
    let requested = loop {
        let e = tap.next(WAIT).await.expect("no rollback published");
        if let Event::DeployRequested(r) = &e.event {
            break (
                e.environment.clone(),
                r.reason.clone(),
                r.requested_by.clone(),
            );
        }
    };
    assert_eq!(
        requested,
        (
            Some("staging".into()),
            "rollback".into(),
            Some("alice".into())
        )
    );

    // The runs, filtered.
    b.goto(&format!("{base}/runs?status=failed")).await.unwrap();
    b.wait_for_text("#runs", &failed_id.to_string()[..8], WAIT)
        .await
        .unwrap();
    b.screenshot(shots().join("runs.png")).await.unwrap();

    // Delivery: two weeks of books' production deployments, a quarter of them failed.
    for e in common::dashboard::two_weeks("books") {
        publisher.publish(&e).await.unwrap();
    }
    b.goto(&format!("{base}/delivery?days=30")).await.unwrap();
    b.wait_for_text("section[data-project=\"books\"] dd.failure-rate", "%", WAIT)
        .await
        .unwrap();
    b.screenshot(shots().join("delivery.png")).await.unwrap();

    // Chinese, remembered across pages.
    b.click("#lang").await.unwrap();
    b.wait_for_text("#nav-environments", "环境", WAIT)
        .await
        .unwrap();
    b.goto(&format!("{base}/")).await.unwrap();
    b.wait_for_text("h1", "待审批", WAIT).await.unwrap();
    b.screenshot(shots().join("environments-zh.png"))
        .await
        .unwrap();

    // Signed out: back to the sign-in page, and the pages need a session again.
    b.click("#sign-out").await.unwrap();
    b.wait_for_text("h1", "登录", WAIT).await.unwrap();
    b.goto(&format!("{base}/runs")).await.unwrap();
    b.wait_for_text("h1", "登录", WAIT).await.unwrap();
    b.close().await.unwrap();
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_is_offered_no_action_and_a_wrong_token_signs_no_one_in() {
    let ns = unique_namespace();
    let cfg = config(&ns, "");
    let _tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    declare_history(&cfg).await;
    let rx = common::start(cfg.clone()).await;
    let base = format!("http://{}", rx.addr);
    let held_run = held(&cfg, "shop", "production").await;

    let b = browser::open().await.unwrap();
    b.goto(&format!("{base}/")).await.unwrap();
    b.fill("#token", "not-anyones-token-1234").await.unwrap();
    b.click("#sign-in").await.unwrap();
    b.wait_for_text("#problem", "not an operator's token", WAIT)
        .await
        .unwrap();
    assert_eq!(b.cookie("ferry_session").await.unwrap(), None);

    sign_in(&b, &base, VIEWER).await;
    b.wait_for_text("#approvals", &held_run.to_string()[..8], WAIT)
        .await
        .unwrap();
    let offered = b
        .count("form.decide, form.rollback, form.deploy")
        .await
        .unwrap();
    assert_eq!(offered, 0, "a viewer is offered action forms");
    b.close().await.unwrap();
    rx.stop().await;
}

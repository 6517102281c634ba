//! Lists go on past what a replica holds in memory: with 10,000 newer runs of another
//! project in the ledger, a project's older runs are still listed by the API (what
//! `ferry runs` reads) and the dashboard's run list, from the ledger, in order, each
//! once.

mod common;

use chrono::{Duration as Span, Utc};
use common::dashboard::{ALICE, config, declare_history};
use ferry_ledger::{Ledger, LedgerUrl};
use ferry_shared::event::{Envelope, Event, SourceChanged};
use hook_receiver::HookReceiver;
use hook_receiver::runs::KEPT_RUNS;
use std::net::SocketAddr;

fn commit(project: &str, revision: &str, at: chrono::DateTime<Utc>) -> Envelope {
    let mut e = Envelope::new_run(
        project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: format!("svn://127.0.0.1/{project}"),
            reference: None,
            revision: revision.into(),
            author: Some("zoe".into()),
            message: Some(format!("change {revision}")),
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    );
    e.time = at;
    e
}

async fn get(http: &reqwest::Client, addr: SocketAddr, path: &str, cookie: &str) -> String {
    let r = http
        .get(format!("http://{addr}{path}"))
        .header("cookie", cookie)
        .header("authorization", format!("Bearer {ALICE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The run ids a dashboard list page shows, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("tr class=\"run\" data-run=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn older_link(page: &str) -> Option<String> {
    let at = page.find("id=\"older\" href=\"")?;
    let rest = &page[at + "id=\"older\" href=\"".len()..];
    Some(rest.split('"').next()?.replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_s_runs_older_than_memory_holds_are_listed_from_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let ns = ferry_testkit::unique_namespace();
    let cfg = config(&ns, &format!("[ledger]\nurl = \"{url}\""));
    declare_history(&cfg).await;

    // 60 runs of shop, then 10,000 newer runs of books: memory keeps only books'.
    let ledger = Ledger::open(&LedgerUrl::parse(&url).unwrap())
        .await
        .unwrap();
    let start = Utc::now() - Span::days(20);
    let mut shop = Vec::new();
    for i in 0..60 {
        let e = commit("shop", &format!("s{i}"), start + Span::seconds(i));
        shop.push(e.run_id.to_string());
        ledger.record(&e, None).await.unwrap();
    }
    for i in 0..KEPT_RUNS {
        let e = commit(
            "books",
            &format!("b{i}"),
            start + Span::hours(1) + Span::seconds(i as i64),
        );
        ledger.record(&e, None).await.unwrap();
    }
    shop.reverse(); // newest first, as lists show them

    let r = HookReceiver::bind(cfg.clone()).await.unwrap();
    let addr = r.addr;
    let (trigger, stop) = ferry_shared::shutdown::channel();
    let task = tokio::spawn(async move { r.run_until_stopped(stop.wait_owned()).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Memory is full (the preload read the newest runs) before lists are asked for.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let body = get(&http, addr, "/api/projects/books/runs?limit=1", "").await;
        if body.contains(&format!("\"b{}\"", KEPT_RUNS - 1)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the preload did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    // The API (`ferry runs shop --limit 25`): the newest 25 of shop, from the ledger.
    let body = get(&http, addr, "/api/projects/shop/runs?limit=25", "").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, shop[..25], "the API's list of shop");
    assert_eq!(json["runs"][0]["revision"], "s59");
    assert_eq!(json["runs"][0]["status"], "running");

    // The dashboard: shop's list is empty in memory, and goes on in the ledger, 50 a
    // page, then the last 10.
    let cookie = common::dashboard::session_cookie(&http, addr, ALICE).await;
    let first = get(&http, addr, "/runs?project=shop", &cookie).await;
    assert!(listed(&first).is_empty(), "shop's runs are not in memory");
    let mut seen = Vec::new();
    let mut next = older_link(&first).expect("no link to the ledger's older runs");
    for _ in 0..3 {
        let page = get(&http, addr, &next, &cookie).await;
        seen.extend(listed(&page));
        match older_link(&page) {
            Some(n) => next = n,
            None => break,
        }
    }
    assert_eq!(seen, shop, "every run of shop, newest first, once");

    // A filter applies past memory's end too: a search for one revision finds it alone.
    let start_of_ledger = older_link(&first).unwrap();
    let page = get(&http, addr, &format!("{start_of_ledger}&q=s17"), &cookie).await;
    assert_eq!(
        listed(&page),
        [shop[59 - 17].clone()],
        "the search past memory's end"
    );
    trigger.trigger();
    task.await.unwrap();
    ledger.close().await;
}

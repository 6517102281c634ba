//! Revisions are parsed at the edge per the project's source kind: anything that is not
//! an SVN number, a full commit id or a branch/tag name is answered 400 with a reason,
//! and nothing is published (a `--upload-pack=<command>` revision used to reach
//! `git fetch` in the builder). Real HTTP, real RabbitMQ.

mod common;

use common::*;
use ferry_shared::event::Event;
use ferry_testkit::{Tap, amqp_url, http_request, unique_namespace};
use std::time::Duration;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const OPERATOR_TOKEN: &str = "operator-token-0123456789";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

/// Revisions no source kind may accept.
const HOSTILE: [&str; 10] = [
    "--upload-pack=touch /tmp/ferry-pwned",
    "-x",
    "-5",
    "0",
    "HEAD~1",
    "main^",
    "a..b",
    "x y",
    "--config-option=config:tunnels:x=touch /tmp/ferry-pwned",
    "0000000000000000000000000000000000000000",
];

/// Fine for one kind, refused for the other: (project, revision).
const WRONG_KIND: [(&str, &str); 7] = [
    ("shop", "abc"),     // abbreviated commit id: give the full one
    ("shop", "6113728"), // the same
    ("shop", "7"),       // an SVN number for a git project
    ("shop", "refs/heads/-x"),
    ("svnshop", "abc"),
    ("svnshop", "r5"),
    ("svnshop", SHA),
];

async fn setup() -> (Receiver, Tap) {
    let ns = unique_namespace();
    let extra = format!(
        "[operators.alice]\ntoken = \"{OPERATOR_TOKEN}\"\ncan = [\"deploy\", \"rollback\"]\n"
    );
    let cfg = config(&amqp_url(), &ns, "svn://127.0.0.1/repo", &extra);
    let tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    (start(cfg).await, tap)
}

async fn api(rx: &Receiver, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    let (status, text) = http_request(
        rx.addr,
        "POST",
        path,
        &[JSON, ("Authorization", &bearer)],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

async fn manual(rx: &Receiver, project: &str, revision: &str) -> (u16, serde_json::Value) {
    let bearer = format!("Bearer {MANUAL_TOKEN}");
    let body = serde_json::json!({ "project": project, "revision": revision });
    rx.post(
        "manual",
        &[JSON, ("Authorization", &bearer)],
        body.to_string().as_bytes(),
    )
    .await
}

#[tokio::test]
async fn hostile_revisions_get_400_from_every_entry_and_publish_nothing() {
    let (rx, mut tap) = setup().await;
    let mut cases: Vec<(&str, &str)> = Vec::new();
    for rev in HOSTILE {
        cases.push(("shop", rev));
        cases.push(("svnshop", rev));
    }
    cases.extend(WRONG_KIND);
    let mut failures = Vec::new();
    for (project, rev) in cases {
        let answers = [
            ("manual", manual(&rx, project, rev).await),
            (
                "deploy",
                api(
                    &rx,
                    &format!("/api/projects/{project}/deploy"),
                    &serde_json::json!({ "revision": rev }),
                )
                .await,
            ),
            (
                "rollback --to",
                api(
                    &rx,
                    &format!("/api/projects/{project}/rollback"),
                    &serde_json::json!({ "environment": "staging", "to": rev }),
                )
                .await,
            ),
        ];
        for (entry, (status, reply)) in answers {
            if status != 400 || !reply["error"].is_string() {
                failures.push(format!(
                    "{entry} {project} {rev:?}: got {status} {reply}, expected 400 with a reason"
                ));
            }
        }
        let published = tap.drain(Duration::from_millis(100)).await;
        if !published.is_empty() {
            failures.push(format!(
                "{project} {rev:?}: published {:?}",
                published
                    .iter()
                    .map(|e| e.routing_key())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The reason says what to send instead.
    let (_, reply) = manual(&rx, "shop", "abc").await;
    assert!(reply["error"].as_str().unwrap().contains("full"), "{reply}");
    let (_, reply) = manual(&rx, "svnshop", "-5").await;
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("positive whole number"),
        "{reply}"
    );
    rx.stop().await;
}

#[tokio::test]
async fn a_rollback_names_an_exact_revision_not_a_branch() {
    let (rx, mut tap) = setup().await;
    let (status, reply) = api(
        &rx,
        "/api/projects/shop/rollback",
        &serde_json::json!({ "environment": "staging", "to": "master" }),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(tap.drain(Duration::from_millis(200)).await.is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn valid_revisions_still_start_runs_in_canonical_form() {
    let (rx, mut tap) = setup().await;
    for (project, rev, recorded) in [
        ("shop", SHA.to_uppercase(), SHA.to_owned()),
        ("shop", "master".into(), "master".into()),
        ("shop", "refs/tags/v1.0".into(), "refs/tags/v1.0".into()),
        ("svnshop", "7".into(), "7".into()),
    ] {
        let (status, reply) = manual(&rx, project, &rev).await;
        assert_eq!(status, 202, "{project} {rev}: {reply}");
        let e = tap
            .expect("source.changed", Duration::from_secs(5))
            .await
            .unwrap();
        let Event::SourceChanged(s) = &e.event else {
            panic!()
        };
        assert_eq!(s.revision, recorded);
    }
    let (status, reply) = api(
        &rx,
        "/api/projects/shop/deploy",
        &serde_json::json!({ "revision": SHA }),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    rx.stop().await;
}

#[tokio::test]
async fn a_pushed_ref_that_git_would_refuse_gets_400() {
    let (rx, mut tap) = setup().await;
    let mut failures = Vec::new();
    // `shop` builds tags `v*`: these match the filter, so they used to start runs.
    for bad in [
        "refs/tags/v1:refs/heads/master",
        "refs/tags/v1..x",
        "refs/tags/v1 --upload-pack=x",
        "refs/tags/v1~1",
    ] {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("gitlab-push.json")).unwrap();
        body["ref"] = bad.into();
        let (status, reply) = rx
            .post(
                "gitlab",
                &[
                    JSON,
                    ("X-Gitlab-Event", "Tag Push Hook"),
                    ("X-Gitlab-Token", GITLAB_TOKEN),
                ],
                body.to_string().as_bytes(),
            )
            .await;
        if status != 400 || !reply["error"].is_string() {
            failures.push(format!("{bad}: got {status} {reply}"));
        }
        let published = tap.drain(Duration::from_millis(100)).await;
        if !published.is_empty() {
            failures.push(format!("{bad}: published"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    rx.stop().await;
}

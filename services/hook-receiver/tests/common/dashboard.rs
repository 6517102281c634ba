//! What the dashboard's tests share: operators with different scopes over two projects,
//! held runs, and a run's events as the stages publish them.

use chrono::Utc;
use ferry_shared::bus::{Publisher, hold};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{
    ApprovalRequested, CheckResult, DeployStarted, DeploySucceeded, Envelope, Event, HostTiming,
    ImageBuilt, ImagePulled, ImagePushed, SourceChanged, StageFailed, TestFailure, TestReport,
};
use ferry_testkit::amqp_url;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const ALICE: &str = "alice-token-0123456789";
pub const BOB: &str = "bob-token-0123456789ab";
pub const VIEWER: &str = "viewer-token-0123456789";
/// `shop` and `books`, each staging → production; alice may do everything, bob
/// approve and roll back on `shop` only, viewer only look.
pub fn config(ns: &str, extra: &str) -> Arc<FerryConfig> {
    let text = format!(
        r#"
        [broker]
        url = "{amqp}"
        namespace = "{ns}"
        publish_timeout_ms = 2000
        connect_timeout_ms = 1000
        [services.hook_receiver]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [environments.staging]
        [environments.production]
        [projects.shop]
        image = "shop/web"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/shop" }}
        [projects.books]
        image = "books/web"
        environments = ["staging", "production"]
        source = {{ kind = "svn", url = "svn://127.0.0.1/books" }}
        [operators.alice]
        token = "{ALICE}"
        can = ["view", "deploy", "approve", "rollback"]
        [operators.bob]
        token = "{BOB}"
        projects = ["shop"]
        can = ["view", "approve", "rollback"]
        [operators.viewer]
        token = "{VIEWER}"
        {extra}
        "#,
        amqp = amqp_url(),
    );
    Arc::new(FerryConfig::from_toml_with_env(&text, Path::new("test.toml")).unwrap())
}

/// The receiver declares the history stream as it starts reading it: declared here
/// first, the test's events cannot go before it exists.
pub async fn declare_history(cfg: &FerryConfig) {
    let conn = ferry_shared::bus::connect::connect(&cfg.broker, "test")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    ferry_shared::bus::topology::Topology::history(&cfg.broker)
        .declare(&channel)
        .await
        .unwrap();
}

/// A run of `project` held for approval into `env`, as the updater holds it.
pub async fn held(cfg: &FerryConfig, project: &str, env: &str) -> Uuid {
    let mut e = Envelope::new_run(
        project,
        Event::ApprovalRequested(ApprovalRequested {
            revision: "5".into(),
            image: format!("127.0.0.1:5000/{project}:5@sha256:{}", "a".repeat(64)),
            passed_in: None,
            expires_at: Utc::now() + chrono::Duration::minutes(10),
            canary_percent: None,
        }),
    );
    e.environment = Some(env.into());
    // As the updater does: the request on the bus (for the history and the
    // notifications), the hold in its queue.
    Publisher::new(&cfg.broker, "test", None)
        .publish(&e)
        .await
        .unwrap();
    hold::place(&cfg.broker, &e, Duration::from_secs(600))
        .await
        .unwrap();
    e.run_id.into()
}

/// A run through staging whose production tests failed: its events as the stages
/// publish them.
pub fn a_run(project: &str) -> Vec<Envelope> {
    let image = format!("127.0.0.1:5000/{project}:7@sha256:{}", "b".repeat(64));
    let source = Envelope::new_run(
        project,
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "svn://127.0.0.1/shop".into(),
            reference: None,
            revision: "7".into(),
            author: Some("zoe".into()),
            message: Some("checkout in one step".into()),
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    );
    let built = source.follow(
        Event::ImageBuilt(ImageBuilt {
            revision: "7".into(),
            image: image.clone(),
            config_commit: None,
            build_log: Some(format!("/var/lib/ferry/logs/{project}/7.log")),
            docker_millis: None,
            build_host: None,
        }),
        None,
    );
    let pushed = built.follow(
        Event::ImagePushed(ImagePushed {
            revision: "7".into(),
            image: image.clone(),
            docker_millis: None,
        }),
        None,
    );
    let mut out = vec![source, built, pushed.clone()];
    let mut cause = pushed;
    for env in ["staging", "production"] {
        let pulled = cause.follow(
            Event::ImagePulled(ImagePulled {
                revision: "7".into(),
                image: image.clone(),
                hosts: vec![],
            }),
            Some(env),
        );
        let started = pulled.follow(
            Event::DeployStarted(DeployStarted {
                revision: "7".into(),
                image: image.clone(),
                previous_image: None,
                rollback: false,
            }),
            Some(env),
        );
        let deployed = pulled.follow(
            Event::DeploySucceeded(DeploySucceeded {
                revision: "7".into(),
                image: image.clone(),
                previous_image: None,
                hosts: vec![HostTiming {
                    host: format!("{env}-h1"),
                    millis: 900,
                    outcome: Default::default(),
                    endpoint: None,
                }],
            }),
            Some(env),
        );
        out.extend([pulled, started, deployed.clone()]);
        cause = deployed;
    }
    out.push(cause.follow(
        Event::TestFailed(TestFailure {
            failure: StageFailed {
                service: "tester".into(),
                reason: "1 of 2 checks failed".into(),
                attempts: 1,
                failed_event_id: cause.event_id,
                failed_kind: "deploy.succeeded".into(),
            },
            report: Some(TestReport {
                revision: "7".into(),
                image,
                previous_image: None,
                checks: vec![
                    CheckResult {
                        name: "GET /health".into(),
                        passed: true,
                        millis: 3,
                        detail: None,
                    },
                    CheckResult {
                        name: "GET /cart".into(),
                        passed: false,
                        millis: 5,
                        detail: Some("expected status 200, got 500".into()),
                    },
                ],
                output: None,
                millis: 8,
            }),
        }),
        Some("production"),
    ));
    // Spread over the last two minutes like a real run (what each stage took, in ms:
    // source, build, push, then pull, deploy started, deployed per environment, test).
    let took = [
        0, 41_000, 6_500, 3_200, 400, 8_800, 2_900, 300, 9_400, 4_100,
    ];
    let mut at = Utc::now() - chrono::Duration::seconds(120);
    for (e, ms) in out.iter_mut().zip(took) {
        at += chrono::Duration::milliseconds(ms);
        e.time = at;
    }
    out
}

/// Two weeks of `project`'s runs to production, one to three a day, every fourth failing
/// its production tests and rolled back 20 minutes later: what the delivery page charts.
pub fn two_weeks(project: &str) -> Vec<Envelope> {
    use ferry_shared::event::DeployRolledBack;
    let mut out = Vec::new();
    let mut n = 0;
    for day in (1..=14).rev() {
        for k in 0..(1 + day % 3) {
            n += 1;
            let mut run = a_run(project);
            let failing = n % 4 == 0;
            if !failing {
                run.pop();
            }
            let start = Utc::now() - chrono::Duration::days(day) + chrono::Duration::hours(2 * k);
            let shift = start - run[0].time;
            for e in run.iter_mut() {
                e.time += shift;
            }
            if let Event::SourceChanged(s) = &mut run[0].event {
                // Committed between 10 minutes and 3 hours before the hook came.
                s.committed = Some(start - chrono::Duration::minutes(10 + 17 * (n % 11)));
            }
            if failing {
                let failed = run.last().unwrap().clone();
                let mut back = failed.follow(
                    Event::DeployRolledBack(DeployRolledBack {
                        revision: "6".into(),
                        image: format!("127.0.0.1:5000/{project}:6"),
                        from_revision: Some("7".into()),
                        from_image: None,
                        reason: "1 of 2 checks failed".into(),
                        hosts: vec![],
                    }),
                    Some("production"),
                );
                back.time = failed.time + chrono::Duration::minutes(20);
                run.push(back);
            }
            out.extend(run);
        }
    }
    out
}

/// Signs in to the dashboard at `addr` with `token`; the `name=value` of the session
/// cookie.
pub async fn session_cookie(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    token: &str,
) -> String {
    let login = http
        .post(format!("http://{addr}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ferry_session="))
        .and_then(|c| c.split(';').next())
        .expect("no session cookie")
        .to_owned()
}

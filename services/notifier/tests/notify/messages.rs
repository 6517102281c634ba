//! Every message kind, in both languages, as an e-mail's subject and text part: the
//! rendered words are pinned in `snapshots/` next to this file (insta), so that any
//! change of wording shows in review (`cargo insta review`, or `INSTA_UPDATE=always`
//! and read the diff).
//!
//! The story is the quick start's: r14 runs in staging and production; jdoe commits
//! r15 "break the home page", which removes the text staging's check looks for.

use crate::*;
use chrono::{DateTime, TimeZone, Utc};
use ferry_shared::event::{
    ApprovalRequested, CheckResult, Decision, DeployReason, DeployRequested, DeployRolledBack,
    DeployStarted, DeploySucceeded, DeploySuperseded, HostOutcome, HostTiming, ImageBuilt,
    ImagePulled, ImagePushed, RunId, TestFailure, TestReport,
};
use notifier::i18n::Lang;
use notifier::notice::Notice;
use notifier::runs::Runs;

const IMG14: &str = "127.0.0.1:5000/examples/hello:14@sha256:4f1c2a9e0b7d";
const IMG15: &str = "127.0.0.1:5000/examples/hello:15@sha256:9d3e5b1f6a2c";
const PAGE_CHECK: &str = "expected the body to contain \"Hello from Ferry\", got: <h1>Hello</h1>\
                          <p>deployed to staging, tested, and promoted to production by Ferry.</p>";

struct Story {
    runs: Runs,
    t0: DateTime<Utc>,
    step: u128,
    /// What each event's notice said, in order.
    told: Vec<(String, String)>,
}

impl Story {
    fn new() -> Story {
        Story {
            runs: Runs::default(),
            t0: Utc.with_ymd_and_hms(2026, 12, 2, 9, 30, 0).unwrap(),
            step: 0,
            told: Vec::new(),
        }
    }

    /// `event` of run `run`, `ms` after the story's start, seen by the notifier; its
    /// notices kept under `name` when given.
    fn at(&mut self, run: u128, ms: i64, env: Option<&str>, event: Event, name: Option<&str>) {
        self.step += 1;
        let mut e = Envelope::new_run("hello", event);
        e.run_id = RunId::from(uuid::Uuid::from_u128(run));
        e.event_id = uuid::Uuid::from_u128(0xe000 + self.step);
        e.environment = env.map(str::to_owned);
        e.time = self.t0 + chrono::Duration::milliseconds(ms);
        let info = self.runs.observe(&e);
        let Some(name) = name else { return };
        for lang in [Lang::En, Lang::ZhCn] {
            let n = Notice::build(&e, &info, lang, "ferry");
            let text = format!(
                "Subject: [Ferry] {}\n\n{}",
                n.headline,
                notifier::render::text(&n)
            );
            self.told.push((format!("{name}.{}", lang.code()), text));
        }
    }
}

fn source(revision: &str, message: &str) -> Event {
    Event::SourceChanged(SourceChanged {
        source: "svn".into(),
        repository: "svn://127.0.0.1:3710/hello".into(),
        reference: None,
        revision: revision.into(),
        author: Some("jdoe".into()),
        message: Some(message.into()),
        changed_paths: vec!["trunk/public/index.html".into()],
        config_change: None,
        committed: None,
    })
}

fn built(revision: &str) -> Event {
    Event::ImageBuilt(ImageBuilt {
        docker_millis: None,
        build_host: None,
        revision: revision.into(),
        image: format!("127.0.0.1:5000/examples/hello:{revision}"),
        config_commit: None,
        build_log: None,
    })
}

fn failed(service: &str, kind: &str, reason: &str) -> StageFailed {
    StageFailed {
        service: service.into(),
        reason: reason.into(),
        attempts: 3,
        failed_event_id: uuid::Uuid::from_u128(0xf00),
        failed_kind: kind.into(),
    }
}

fn host(name: &str, millis: u64) -> Vec<HostTiming> {
    vec![HostTiming {
        host: name.into(),
        millis,
        outcome: HostOutcome::Updated,
        endpoint: None,
    }]
}

fn deployed(revision: &str, image: &str, previous: Option<&str>, on: &str) -> Event {
    Event::DeploySucceeded(DeploySucceeded {
        revision: revision.into(),
        image: image.into(),
        previous_image: previous.map(str::to_owned),
        hosts: host(on, 850),
    })
}

fn started(revision: &str, image: &str, previous: &str, rollback: bool) -> Event {
    Event::DeployStarted(DeployStarted {
        revision: revision.into(),
        image: image.into(),
        previous_image: Some(previous.into()),
        rollback,
    })
}

fn report(passed: bool) -> TestReport {
    TestReport {
        revision: "15".into(),
        image: IMG15.into(),
        previous_image: Some(IMG14.into()),
        checks: vec![
            CheckResult {
                name: "health".into(),
                passed: true,
                millis: 12,
                detail: None,
            },
            CheckResult {
                name: "home page".into(),
                passed,
                millis: 31,
                detail: (!passed).then(|| PAGE_CHECK.to_owned()),
            },
        ],
        output: None,
        millis: 45,
    }
}

fn decision(by: &str, comment: Option<&str>) -> Decision {
    Decision {
        revision: "15".into(),
        image: IMG15.into(),
        by: by.into(),
        at: Utc.with_ymd_and_hms(2026, 12, 2, 9, 45, 0).unwrap(),
        comment: comment.map(str::to_owned),
    }
}

/// Every kind a person is told about, in the order a run meets them.
fn story() -> Vec<(String, String)> {
    const R14: u128 = 14;
    const R15: u128 = 15;
    let mut s = Story::new();
    // r14 runs everywhere.
    s.at(R14, 0, None, source("14", "new home page"), None);
    s.at(
        R14,
        900,
        Some("staging"),
        deployed("14", IMG14, None, "staging-1"),
        None,
    );
    s.at(
        R14,
        1500,
        Some("production"),
        deployed("14", IMG14, None, "production-1"),
        None,
    );

    // r15: built, pushed, pre-pulled, deployed to staging, fails its check, rolled back.
    s.at(R15, 60_000, None, source("15", "break the home page"), None);
    s.at(R15, 61_150, None, built("15"), None);
    s.at(
        R15,
        61_300,
        None,
        Event::ImagePushed(ImagePushed {
            docker_millis: None,
            revision: "15".into(),
            image: IMG15.into(),
        }),
        None,
    );
    s.at(
        R15,
        61_600,
        Some("staging"),
        Event::ImagePulled(ImagePulled {
            revision: "15".into(),
            image: IMG15.into(),
            hosts: vec![],
        }),
        None,
    );
    s.at(
        R15,
        61_650,
        Some("staging"),
        started("15", IMG15, IMG14, false),
        Some("deploy.started"),
    );
    s.at(
        R15,
        62_400,
        Some("staging"),
        deployed("15", IMG15, Some(IMG14), "staging-1"),
        Some("deploy.succeeded"),
    );
    s.at(
        R15,
        62_480,
        Some("staging"),
        Event::TestPassed(report(true)),
        Some("test.passed"),
    );
    s.at(
        R15,
        62_500,
        Some("staging"),
        Event::TestFailed(TestFailure {
            failure: failed(
                "tester",
                "deploy.succeeded",
                "1 of 2 checks failed: home page",
            ),
            report: Some(report(false)),
        }),
        Some("test.failed"),
    );
    s.at(
        R15,
        62_520,
        Some("staging"),
        started("14", IMG14, IMG15, true),
        Some("deploy.started.rollback"),
    );
    s.at(
        R15,
        63_100,
        Some("staging"),
        Event::DeployRolledBack(DeployRolledBack {
            revision: "14".into(),
            image: IMG14.into(),
            from_revision: Some("15".into()),
            from_image: Some(IMG15.into()),
            reason: format!(
                "tests failed in staging: 1 of 2 checks failed: home page\nhome page: {PAGE_CHECK}"
            ),
            hosts: host("staging-1", 580),
        }),
        Some("deploy.rolled_back"),
    );

    // r16 does not build; r17 builds but cannot be pushed.
    s.at(
        16,
        66_000,
        None,
        source("16", "require shop/money ^2"),
        None,
    );
    s.at(16, 70_000, None, Event::BuildFailed(failed(
        "builder",
        "source.changed",
        "step 3/5 RUN composer install --no-dev failed (exit 2):\n  Your requirements could not be resolved to an installable set of packages.",
    )), Some("build.failed"));
    s.at(17, 68_000, None, source("17", "price in cents"), None);
    s.at(17, 69_400, None, built("17"), None);
    s.at(17, 70_100, None, Event::PushFailed(failed(
        "pusher",
        "image.built",
        "push of 127.0.0.1:5000/examples/hello:17 failed: the registry answered 503 Service Unavailable; check the registry and run `ferry deploy hello --revision 17`",
    )), Some("push.failed"));

    // The other ends r15 may meet in production.
    s.at(R15, 70_200, Some("production"), Event::PullFailed(failed(
        "puller",
        "image.pushed",
        "production-1: pull of 127.0.0.1:5000/examples/hello:15@sha256:9d3e5b1f6a2c failed: no space left on device",
    )), Some("pull.failed"));
    s.at(
        R15,
        70_300,
        Some("production"),
        started("15", IMG15, IMG14, false),
        None,
    );
    s.at(R15, 70_900, Some("production"), Event::DeployFailed(failed(
        "rancher-updater",
        "deploy.requested",
        "production-1: the new container did not pass its health check (GET /healthz answered 500 for 30 s); the release before it keeps running",
    )), Some("deploy.failed"));
    s.at(
        R15,
        71_000,
        Some("production"),
        Event::DeploySuperseded(DeploySuperseded {
            revision: "15".into(),
            image: IMG15.into(),
            running_image: IMG14.into(),
            running_run_id: uuid::Uuid::from_u128(R14),
        }),
        Some("deploy.superseded"),
    );
    s.at(
        R15,
        72_000,
        Some("production"),
        Event::ApprovalRequested(ApprovalRequested {
            revision: "15".into(),
            image: IMG15.into(),
            passed_in: Some("staging".into()),
            expires_at: Utc.with_ymd_and_hms(2026, 12, 3, 9, 31, 12).unwrap(),
            canary_percent: None,
        }),
        Some("approval.requested"),
    );
    s.at(
        R15,
        73_000,
        Some("production"),
        Event::ApprovalGranted(decision("alice", Some("checked with QA"))),
        Some("approval.granted"),
    );
    s.at(
        R15,
        73_100,
        Some("production"),
        Event::ApprovalRejected(decision("alice", Some("not during the sale"))),
        Some("approval.rejected"),
    );
    s.at(
        R15,
        73_200,
        Some("production"),
        Event::ApprovalExpired(decision("ferry", None)),
        Some("approval.expired"),
    );
    s.at(
        R15,
        74_000,
        Some("production"),
        Event::DeployRequested(DeployRequested {
            revision: "14".into(),
            image: IMG14.into(),
            reason: DeployReason::Rollback,
            requested_by: Some("alice".into()),
        }),
        Some("deploy.requested"),
    );
    s.at(R15, 75_000, None, Event::NotifyFailed(failed(
        "notifier",
        "deploy.rolled_back",
        "channel `team-chat`: DingTalk answered errcode 310000 (sign not match); check notify.channels.team-chat.secret",
    )), Some("notify.failed"));
    s.told
}

#[test]
fn every_message_kind_reads_as_pinned_in_both_languages() {
    let told = story();
    assert_eq!(told.len(), 2 * 17, "a kind went missing from the story");
    for (name, text) in told {
        insta::assert_snapshot!(name, text);
    }
}

/// The broken-commit story of the quick start: the rollback names the failed revision
/// first, its commit, and what runs now; no ordinary word is blanked out.
#[test]
fn a_rollback_message_says_which_commit_failed_and_what_runs_now() {
    let told = story();
    let said = |name: &str| {
        let (_, text) = told.iter().find(|(n, _)| n == name).unwrap();
        text.clone()
    };
    let en = said("deploy.rolled_back.en");
    let lines: Vec<&str> = en.lines().collect();
    assert_eq!(
        lines[0],
        "Subject: [Ferry] hello r15 · staging: rolled back to r14"
    );
    for needle in [
        "Revision: r15",
        "Author: jdoe",
        "Commit: break the home page",
        &format!("Running now: r14 · {IMG14}"),
        &format!("Rolled back from: r15 · {IMG15}"),
        "promoted to production by Ferry",
    ] {
        assert!(en.contains(needle), "`{needle}` missing from:\n{en}");
    }
    assert!(!en.contains("[redacted]"), "{en}");
    let zh = said("deploy.rolled_back.zh-CN");
    assert!(
        zh.starts_with("Subject: [Ferry] hello r15 · staging: 已回滚到 r14"),
        "{zh}"
    );
    assert!(zh.contains("提交说明: break the home page"), "{zh}");
}

/// An ops push to the config repo: the run rebuilds r14 with the new config, and its
/// messages say it is a config change, by whom and which files (never their content).
#[test]
fn a_config_change_says_who_changed_which_files() {
    let mut s = Story::new();
    let change = Event::SourceChanged(SourceChanged {
        source: "config".into(),
        repository: "svn://127.0.0.1:3710/hello".into(),
        reference: None,
        revision: "14".into(),
        author: Some("Ops Person".into()),
        message: Some("rotate the database password".into()),
        changed_paths: vec![],
        config_change: Some(ferry_shared::event::ConfigChange {
            commit: "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567".into(),
            author: Some("ops".into()),
            files: vec!["env/production.env".into(), "nginx/site.conf".into()],
        }),
        committed: None,
    });
    s.at(9, 0, None, change, None);
    let img = "127.0.0.1:5000/examples/hello:14-cfg0a1b2c3d@sha256:77aa";
    s.at(
        9,
        900,
        Some("production"),
        deployed("14", img, Some(IMG14), "h2"),
        Some("ok"),
    );
    let en = &s.told[0].1;
    assert!(
        en.contains("Config change: by ops: env/production.env, nginx/site.conf"),
        "{en}"
    );
    assert!(en.contains("Commit: rotate the database password"), "{en}");
    let zh = &s.told[1].1;
    assert!(
        zh.contains("配置变更: ops 修改：env/production.env, nginx/site.conf"),
        "{zh}"
    );
}

//! Canaries through the host's real HAProxy: a release that fails 5 % of its requests is
//! stopped at its first step while users' traffic only ever saw that step's share of it;
//! a healthy one goes step by step, waits for an approval, goes back when rejected, and
//! completes when approved; the proxy restarting and the updater SIGKILLed mid-canary
//! leave no half-done split.

mod common;

use common::*;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Decision, Envelope, Event};
use ferry_testkit::control::Control;
use ferry_testkit::load::Load;
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, free_port, unique_namespace, wait_until};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// A project behind its own proxy container with `canary` as the staging canary.
struct Setup {
    ns: String,
    project: String,
    stable: u16,
    proxy: String,
    cfg: Arc<FerryConfig>,
}

fn setup(canary: &str) -> Setup {
    let host = &docker_hosts()[0];
    let proxy_image = ferry_testkit::ensure_proxy_image(host).unwrap();
    let ns = unique_namespace();
    let project = format!("cy{}", &ns[1..9]);
    let (ports, stable) = ([free_port(), free_port()], free_port());
    let proxy = format!("ferry-proxy-{ns}");
    let _ = config(&ns, &project, ports);
    let _ = edit_config(
        &ns,
        "health_timeout_secs = 6",
        &format!(
            "health_timeout_secs = 6\n        proxy_ports = {{ staging = {stable} }}\n        \
             [proxy]\n        image = \"{proxy_image}\"\n        container = \"{proxy}\"\n        \
             bind_address = \"127.0.0.1\"\n        drain_timeout_secs = 5"
        ),
    );
    let cfg = edit_config(
        &ns,
        "hosts = [\"h1\"]\n",
        &format!("hosts = [\"h1\"]\n        [environments.staging.canary]\n        {canary}\n"),
    );
    Setup {
        ns,
        project,
        stable,
        proxy,
        cfg,
    }
}

impl Setup {
    fn image(&self, version: &str, every: u32) -> String {
        ferry_testkit::flaky_web_image(
            &docker_hosts()[0],
            &format!("web-{}", self.ns),
            version,
            every,
        )
        .unwrap()
    }

    /// `(percent, status)` per slot, as `ferry status` shows it, sorted.
    fn split(&self) -> Vec<(u64, String)> {
        let status = ferry_status(&self.ns, &self.project);
        let mut v: Vec<(u64, String)> = status[0]["traffic"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["percent"].as_u64().unwrap(),
                    t["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn load(&self, path: &str) -> Load {
        let addr = format!("127.0.0.1:{}", self.stable).parse().unwrap();
        Load::start(addr, path, 4, Duration::from_secs(300))
    }

    fn done(&self) {
        cleanup(&self.project);
        let _ = docker(&docker_hosts()[0], None, &["rm", "-f", &self.proxy]);
    }
}

fn decision(request: &Envelope, granted: bool, by: &str) -> Envelope {
    let Event::DeployRequested(r) = &request.event else {
        panic!("a deploy request")
    };
    let d = Decision {
        revision: r.revision.clone(),
        image: r.image.clone(),
        by: by.into(),
        at: chrono::Utc::now(),
        comment: None,
    };
    let event = if granted {
        Event::ApprovalGranted(d)
    } else {
        Event::ApprovalRejected(d)
    };
    request.follow(event, Some("staging"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_failing_5_percent_is_stopped_at_the_first_step_and_users_saw_only_its_share() {
    let s = setup(
        "steps = [{ percent = 10, secs = 30 }, { percent = 50, secs = 5 }]\n        min_requests = 40",
    );
    let (v1, v2) = (s.image("v1", 0), s.image("v2", 20));
    let mut tap = Tap::new(&amqp_url(), &s.ns, "deploy.#").await.unwrap();
    let updater = start_updater(&s.cfg).await;
    let publisher = Publisher::new(&s.cfg.broker, "test", None);
    publisher
        .publish(&request(&s.project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();

    let control = Control::start(&docker_hosts()[0]).await.unwrap();
    let load = s.load("/cgi-bin/flaky");
    publisher
        .publish(&request(&s.project, &v2, "v2"))
        .await
        .unwrap();
    let failed = tap.expect("deploy.failed.staging", WAIT).await.unwrap();
    let seen = load.stop().await;
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("stopped at 10 %") && f.reason.contains("responses failed"),
        "{}",
        f.reason
    );
    // The new release got about its 10 % and failed 1 in 20 of those: what users saw
    // failing stays within the step's share, and the old release served the rest.
    let errors = seen.bodies.get("flaky-v2-error").copied().unwrap_or(0);
    let to_v2 = seen.bodies.get("flaky-v2").copied().unwrap_or(0) + errors;
    assert!(errors > 0, "the canary got requests: {seen:?}");
    assert!(errors * 100 <= seen.sent * 10, "{seen:?}");
    assert!(
        to_v2 * 100 <= seen.sent * 20,
        "about 10 % went to v2: {seen:?}"
    );
    assert!(
        seen.bodies.get("flaky-v1").copied().unwrap_or(0) > to_v2,
        "{seen:?}"
    );
    // Only the canary's errors, or the machine's.
    control
        .stop()
        .await
        .judge_except(&seen, Some("flaky-v2-error"));

    assert_eq!(serving(s.stable).await.as_deref(), Some("v1"));
    assert_eq!(
        running_revisions(&s.project),
        ["v1"],
        "the canary is removed"
    );
    let split = s.split();
    assert_eq!(split.last().map(|x| x.0), Some(100), "{split:?}");
    updater.stop().await;
    s.done();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_waits_for_approval_goes_back_when_rejected_and_completes_when_approved() {
    let s =
        setup("steps = [{ percent = 20, secs = 2 }, { percent = 50, secs = 2, approve = true }]");
    let (v1, v2, v3) = (s.image("v1", 0), s.image("v2", 0), s.image("v3", 0));
    let mut tap = Tap::new(&amqp_url(), &s.ns, "#").await.unwrap();
    let updater = start_updater(&s.cfg).await;
    let publisher = Publisher::new(&s.cfg.broker, "test", None);
    publisher
        .publish(&request(&s.project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    let control = Control::start(&docker_hosts()[0]).await.unwrap();
    let load = s.load("/cgi-bin/flaky");

    // v2 waits at 50 %, and is rejected: all back on v1.
    let v2_request = request(&s.project, &v2, "v2");
    publisher.publish(&v2_request).await.unwrap();
    let held = tap
        .expect("approval.requested.staging", WAIT)
        .await
        .unwrap();
    let Event::ApprovalRequested(a) = &held.event else {
        panic!()
    };
    assert_eq!(a.canary_percent, Some(50));
    let split = s.split();
    assert_eq!(
        split.iter().map(|x| x.0).collect::<Vec<_>>(),
        [50, 50],
        "ferry status shows the split while it waits: {split:?}"
    );
    publisher
        .publish(&decision(&v2_request, false, "ops"))
        .await
        .unwrap();
    let back = wait_until(Duration::from_secs(30), || async {
        running_revisions(&s.project) == ["v1"]
    })
    .await;
    assert!(back, "rejected: the canary is removed");
    assert_eq!(serving(s.stable).await.as_deref(), Some("v1"));

    // v3 waits at 50 %, and is approved: it takes everything.
    let v3_request = request(&s.project, &v3, "v3");
    publisher.publish(&v3_request).await.unwrap();
    tap.expect("approval.requested.staging", WAIT)
        .await
        .unwrap();
    publisher
        .publish(&decision(&v3_request, true, "ops"))
        .await
        .unwrap();
    let done = tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    assert_eq!(done.run_id, v3_request.run_id);
    let seen = load.stop().await;
    control.stop().await.judge(&seen);
    for body in ["flaky-v1", "flaky-v2", "flaky-v3"] {
        assert!(seen.bodies.contains_key(body), "{seen:?}");
    }
    assert_eq!(serving(s.stable).await.as_deref(), Some("v3"));
    assert_eq!(running_revisions(&s.project), ["v3"]);
    let split = s.split();
    assert_eq!(
        split.iter().map(|x| x.0).collect::<Vec<_>>(),
        [0, 100],
        "{split:?}"
    );
    updater.stop().await;
    s.done();
}

struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The updater as its own process (so it can be SIGKILLed), on the test's configuration,
/// once it consumes.
async fn updater_process(ns: &str) -> Reap {
    let config = std::env::temp_dir().join(format!("ferry-{ns}.toml"));
    let admin = free_port();
    let child = Reap(
        Command::new(env!("CARGO_BIN_EXE_rancher-updater"))
            .env("FERRY_CONFIG", config)
            .env(
                "FERRY__SERVICES__RANCHER_UPDATER__ADMIN_LISTEN",
                format!("127.0.0.1:{admin}"),
            )
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let ready = wait_until(Duration::from_secs(20), || async move {
        ferry_testkit::http_request(addr, "GET", "/readyz", &[], b"")
            .await
            .is_ok_and(|(code, _)| code == 200)
    })
    .await;
    assert!(ready, "the updater did not get ready");
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_restart_and_an_updater_killed_mid_canary_leave_no_half_done_split() {
    let s = setup("steps = [{ percent = 30, secs = 8 }]");
    let (v1, v2, v3) = (s.image("v1", 0), s.image("v2", 0), s.image("v3", 0));
    let mut tap = Tap::new(&amqp_url(), &s.ns, "deploy.#").await.unwrap();
    let publisher = Publisher::new(&s.cfg.broker, "test", None);
    let first = updater_process(&s.ns).await;
    publisher
        .publish(&request(&s.project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    let in_step = || async { s.split().iter().map(|x| x.0).collect::<Vec<_>>() == [30, 70] };

    // The proxy restarts in the middle of the step: the canary goes on from its state.
    publisher
        .publish(&request(&s.project, &v2, "v2"))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(40), in_step).await,
        "never at 30 %"
    );
    docker(&docker_hosts()[0], None, &["restart", "-t", "0", &s.proxy]).unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    assert_eq!(serving(s.stable).await.as_deref(), Some("v2"));
    assert_eq!(running_revisions(&s.project), ["v2"]);

    // The updater is SIGKILLed in the middle of the step: the next one (the deploy
    // redelivered to it) finds the split in the proxy and finishes it, once.
    let v3_request = request(&s.project, &v3, "v3");
    publisher.publish(&v3_request).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(40), in_step).await,
        "never at 30 %"
    );
    drop(first);
    assert_eq!(
        running_revisions(&s.project),
        ["v2", "v3"],
        "the split is left"
    );
    let _second = updater_process(&s.ns).await;
    let done = tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    assert_eq!(done.run_id, v3_request.run_id);
    assert_eq!(serving(s.stable).await.as_deref(), Some("v3"));
    assert_eq!(running_revisions(&s.project), ["v3"]);
    let later = tap.drain(Duration::from_secs(3)).await;
    assert!(
        later
            .iter()
            .all(|e| !matches!(e.event, Event::DeploySucceeded(_))),
        "deployed once"
    );
    let split = s.split();
    assert_eq!(
        split.iter().map(|x| x.0).collect::<Vec<_>>(),
        [0, 100],
        "{split:?}"
    );
    s.done();
}

//! Deploys through the host's real HAProxy (`ferry-proxy`): a load generator on the
//! environment's stable port sees no failed or cut request across deploys and
//! rollbacks, the slow requests in flight on the old release included, and the split
//! survives a restart of the proxy.

mod common;

use common::*;
use ferry_shared::bus::Publisher;
use ferry_testkit::control::Control;
use ferry_testkit::load::Load;
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, free_port, unique_namespace};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The project's image whose `/cgi-bin/slow` takes 2 s to answer.
fn slow_image(ns: &str, version: &str) -> String {
    ferry_testkit::slow_web_image(&docker_hosts()[0], &format!("web-{ns}"), version).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_and_rollbacks_through_the_proxy_fail_no_request() {
    let host = &docker_hosts()[0];
    let proxy_image = ferry_testkit::ensure_proxy_image(host).unwrap();
    let ns = unique_namespace();
    let project = format!("px{}", &ns[1..9]);
    let (ports, stable) = ([free_port(), free_port()], free_port());
    let container = format!("ferry-proxy-{ns}");
    let _ = config(&ns, &project, ports);
    let cfg = edit_config(
        &ns,
        "health_timeout_secs = 6",
        &format!(
            "health_timeout_secs = 6\n        proxy_ports = {{ staging = {stable} }}\n        \
             [proxy]\n        image = \"{proxy_image}\"\n        container = \"{container}\"\n        \
             bind_address = \"127.0.0.1\"\n        drain_timeout_secs = 10"
        ),
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2) = (slow_image(&ns, "v1"), slow_image(&ns, "v2"));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    assert_eq!(
        serving(stable).await.as_deref(),
        Some("v1"),
        "through the proxy"
    );
    let v1_container = running_ids(&project);
    assert_eq!(v1_container.len(), 1, "{v1_container:?}");

    // Requests without pause on the stable port, fast ones and 2 s ones, while the
    // environment goes back and forth.
    let addr = format!("127.0.0.1:{stable}").parse().unwrap();
    let control = Control::start(host).await.unwrap();
    let fast = Load::start(addr, "/", 4, Duration::from_secs(240));
    let slow = Load::start(addr, "/cgi-bin/slow", 2, Duration::from_secs(240));
    for round in 0..3 {
        publisher
            .publish(&request(&project, &v2, "v2"))
            .await
            .unwrap();
        tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
        assert_eq!(
            serving(stable).await.as_deref(),
            Some("v2"),
            "round {round}"
        );
        publisher.publish(&rollback(&project, "ops")).await.unwrap();
        tap.expect("deploy.rolled_back.staging", WAIT)
            .await
            .unwrap();
        assert_eq!(
            serving(stable).await.as_deref(),
            Some("v1"),
            "round {round}"
        );
        // The same switch backwards: v1's own container, retired by the deploy and
        // started again, not a new one.
        assert_eq!(running_ids(&project), v1_container, "round {round}");
    }
    let (fast, slow) = (fast.stop().await, slow.stop().await);
    let control = control.stop().await;
    control.judge(&fast);
    control.judge(&slow);
    assert!(fast.sent > 100 && slow.sent > 10, "{fast:?} {slow:?}");
    for version in ["v1", "v2"] {
        assert!(fast.bodies.contains_key(version), "{fast:?}");
        assert!(
            slow.bodies.contains_key(&format!("slow-{version}")),
            "{slow:?}"
        );
    }

    // `ferry status` shows the split: all new requests to the live slot, the other out.
    let status = ferry_status(&ns, &project);
    let split = status[0]["traffic"].as_array().cloned().unwrap_or_default();
    let mut shares: Vec<(u64, String)> = split
        .iter()
        .map(|t| {
            (
                t["percent"].as_u64().unwrap(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    shares.sort();
    assert_eq!(shares.len(), 2, "{status}");
    assert_eq!(
        (shares[0].0, shares[0].1.as_str()),
        (0, "MAINT"),
        "{status}"
    );
    assert_eq!(shares[1].0, 100, "{status}");
    assert!(shares[1].1.starts_with("UP"), "{status}");

    // The proxy restarted (killed, brought back by Docker's restart policy or by the
    // next deploy): the state file keeps the live slot live.
    docker(host, None, &["restart", "-t", "0", &container]).unwrap();
    let back = ferry_testkit::wait_until(Duration::from_secs(20), || async {
        serving(stable).await.as_deref() == Some("v1")
    })
    .await;
    assert!(back, "the proxy serves v1 again after its restart");
    updater.stop().await;
    cleanup(&project);
    let _ = docker(host, None, &["rm", "-f", &container]);
}

//! A run's place when the sender's clock is out of range: a Harbor push is ordered by
//! when the receiver got it. (Run order through every service is proved end to end in
//! `tests/e2e`, `order.rs`.)

mod common;

use ferry_shared::order::OrderScale;
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::time::Duration;

// Generous: the whole suite shares two cores with three Docker daemons.
const WAIT: Duration = Duration::from_secs(120);

/// Harbor's `occur_at` is the sender's to write: at `i64::MAX` the hook is still
/// answered (no overflow, no panic), and the run's place is the receiver's clock.
#[tokio::test]
async fn a_harbor_occur_at_of_i64_max_is_answered_and_orders_nothing() {
    let ns = unique_namespace();
    let mut tap = Tap::new(&amqp_url(), &ns, "image.pushed").await.unwrap();
    let cfg = common::config(&amqp_url(), &ns, "svn://127.0.0.1/none", "");
    let receiver = common::start(cfg).await;
    let mut body: serde_json::Value =
        serde_json::from_slice(&common::fixture("harbor-push-artifact.json")).unwrap();
    body["occur_at"] = i64::MAX.into();
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", common::HARBOR_AUTH),
    ];
    let before = chrono::Utc::now().timestamp_millis() as u64;
    let (status, reply) = receiver
        .post("harbor", &headers, body.to_string().as_bytes())
        .await;
    assert_eq!(status, 202, "{reply}");
    let pushed = tap.expect("image.pushed", WAIT).await.unwrap();
    let order = pushed.order.expect("a Harbor run has a place");
    assert_eq!(order.scale, OrderScale::Received);
    assert!(
        order.value >= before && order.value <= chrono::Utc::now().timestamp_millis() as u64,
        "{order:?}"
    );
    // Still serving.
    let (status, _) = receiver
        .post("harbor", &headers, body.to_string().as_bytes())
        .await;
    assert_eq!(status, 202);
    receiver.stop().await;
}

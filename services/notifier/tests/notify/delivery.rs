//! Delivery through RabbitMQ: the rate limit under a burst, retries, parking, repeats.

use crate::sink::Sink;
use crate::*;
use ferry_shared::bus::Publisher;
use ferry_testkit::{RunningStage, Tap, amqp_url, spawn_stage, wait_until};
use std::time::Duration;

async fn start(cfg: &Arc<FerryConfig>) -> RunningStage {
    let stage = notifier::Stage::new(cfg.clone());
    let counters = stage.counters();
    let running = spawn_stage(cfg, notifier::spec(), notifier::DEFAULTS, stage).await;
    counters.attach(&running.metrics);
    running
}

fn webhook(sink: &Sink) -> String {
    format!(
        "[notify.channels.hook]\nkind = \"webhook\"\nurl = \"{}/hook\"\n\
         [[notify.routes]]\non = [\"failed\"]\nchannels = [\"hook\"]\n",
        sink.url
    )
}

#[tokio::test]
async fn thirty_failures_in_a_burst_reach_one_dingtalk_robot_twenty_per_window_at_most() {
    let sink = Sink::start(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let window = Duration::from_millis(3000);
    let cfg = config(&format!(
        "[notify.channels.ding]\nkind = \"dingtalk\"\nurl = \"{}/robot/send?access_token=t\"\n\
         rate_limit = {{ messages = 20, window_ms = 3000 }}\n\
         [[notify.routes]]\non = [\"failed\"]\nchannels = [\"ding\"]\n",
        sink.url
    ));
    let stage = start(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let runs: Vec<Envelope> = (0..30).map(|_| source()).collect();
    for src in &runs {
        publisher.publish(&build_failed(src, "boom")).await.unwrap();
    }
    let all_arrived = wait_until(Duration::from_secs(30), || {
        let (sink, runs) = (sink.clone(), runs.clone());
        async move {
            let text: String = sink
                .requests()
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect();
            runs.iter().all(|r| text.contains(&r.run_id.to_string()))
        }
    })
    .await;
    let reqs = sink.requests();
    assert!(
        all_arrived,
        "not every run was reported; {} messages",
        reqs.len()
    );
    // Every run exactly once.
    let text: String = reqs
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    for r in &runs {
        // Each run id appears twice per notice: the `Run` line and the `ferry logs` command.
        assert_eq!(
            text.matches(&r.run_id.to_string()).count(),
            2,
            "run {} repeated or missing",
            r.run_id
        );
    }
    // No more than 20 in any window, so some were merged.
    for (i, first) in reqs.iter().enumerate() {
        let within = reqs[i..]
            .iter()
            .filter(|r| r.at.duration_since(first.at) < window)
            .count();
        assert!(within <= 20, "{within} messages within {window:?}");
    }
    assert!(
        reqs.len() < 30,
        "nothing was merged ({} messages)",
        reqs.len()
    );
    eprintln!("30 failures arrived in {} messages", reqs.len());
    assert!(text.contains("updates (merged to respect the rate limit)"));
    stage.stop().await;
}

#[tokio::test]
async fn a_sink_answering_500_then_200_gets_the_message_once() {
    let sink = Sink::start(200, "").await;
    sink.script(&[(500, "try later")]);
    let cfg = config(&webhook(&sink));
    let stage = start(&cfg).await;
    let src = source();
    let failed = build_failed(&src, "boom");
    Publisher::new(&cfg.broker, "test", None)
        .publish(&failed)
        .await
        .unwrap();
    let m = stage.metrics.clone();
    assert!(wait_until(Duration::from_secs(10), || async { m.handled.get() == 1 }).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reqs = sink.requests();
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 200]
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("x-ferry-delivery").unwrap() == failed.event_id.to_string())
    );
    assert_eq!(m.parked.get(), 0);
    assert!(
        m.render()
            .contains("ferry_notifications_retried_total{service=\"notifier\"} 1")
    );
    stage.stop().await;
}

#[tokio::test]
async fn a_sink_answering_400_parks_the_event_with_its_reason_and_is_not_asked_again() {
    let sink = Sink::start(400, "invalid_payload").await;
    let cfg = config(&webhook(&sink));
    let mut tap = Tap::new(&amqp_url(), &cfg.broker.namespace, "notify.failed")
        .await
        .unwrap();
    let stage = start(&cfg).await;
    let src = source();
    Publisher::new(&cfg.broker, "test", None)
        .publish(&build_failed(&src, "boom"))
        .await
        .unwrap();

    let failed = tap
        .expect("notify.failed", Duration::from_secs(10))
        .await
        .unwrap();
    let ferry_shared::event::Event::NotifyFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason
            .contains("channel `hook`: HTTP 400: invalid_payload"),
        "{}",
        f.reason
    );
    assert_eq!(f.failed_kind, "build.failed");
    let m = stage.metrics.clone();
    assert!(wait_until(Duration::from_secs(5), || async { m.parked.get() == 1 }).await);
    let parked = ferry_testkit::get_one(
        &amqp_url(),
        &format!("{}.notifier.parked", cfg.broker.namespace),
    )
    .await
    .unwrap()
    .expect("the event waits in the parking lot");
    let reason =
        ferry_shared::bus::headers::get_str(&parked.properties, "x-ferry-parked-reason").unwrap();
    assert_eq!(
        reason,
        "notification not delivered: channel `hook`: HTTP 400: invalid_payload; check the channel's URL and secret"
    );
    // Its own notify.failed is handled too, without another message to the sink.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.requests().len(), 1, "the 400 was asked again");
    assert_eq!(m.parked.get(), 1);
    assert!(
        m.render()
            .contains("ferry_notifications_failed_total{service=\"notifier\"} 1")
    );
    stage.stop().await;
}

#[tokio::test]
async fn a_redelivered_event_is_notified_once() {
    let sink = Sink::start(200, "").await;
    let cfg = config(&webhook(&sink));
    let stage = start(&cfg).await;
    let failed = build_failed(&source(), "boom");
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher.publish(&failed).await.unwrap();
    publisher.publish(&failed).await.unwrap();
    let m = stage.metrics.clone();
    assert!(wait_until(Duration::from_secs(10), || async { m.handled.get() == 2 }).await);
    assert_eq!(sink.requests().len(), 1);
    assert!(
        m.render()
            .contains("ferry_notifications_duplicates_total{service=\"notifier\"} 1")
    );
    stage.stop().await;
}

#[tokio::test]
async fn a_restarted_notifier_remembers_what_it_delivered_with_a_state_dir() {
    let sink = Sink::start(200, "").await;
    let dir = std::env::temp_dir().join(format!("ferry-notify-state-{}", uuid::Uuid::new_v4()));
    let cfg = config(&format!(
        "state_dir = \"{}\"\n{}",
        dir.display(),
        webhook(&sink)
    ));
    let failed = build_failed(&source(), "boom");
    let first = notifier::Notifier::new(&cfg).unwrap();
    assert_eq!(first.notify(&failed).await.sent.len(), 1);
    drop(first);
    let second = notifier::Notifier::new(&cfg).unwrap();
    let report = second.notify(&failed).await;
    assert_eq!(report.already_sent, vec!["hook".to_owned()], "{report:?}");
    assert_eq!(sink.requests().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

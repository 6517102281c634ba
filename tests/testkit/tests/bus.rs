//! The bus against a real RabbitMQ: delivery guarantees, retries, parking, recovery.

use ferry_shared::bus::topology::{declare_exchange, exchange_name, parked_queue_name, queue_name};
use ferry_shared::bus::{
    BusError, Consumer, ConsumerOptions, Context, Outcome, Publisher, SettledAs, Topology,
};
use ferry_shared::config::BrokerConfig;
use ferry_shared::event::{Envelope, Event};
use ferry_shared::metrics::Metrics;
use ferry_shared::pipeline;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use ferry_testkit::{
    FnHandler, PrivateBroker, Tap, amqp_url, broker_config, get_one, queue_len, source_changed,
    wait_until,
};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn opts() -> ConsumerOptions {
    ConsumerOptions {
        prefetch: 4,
        handler_timeout: SECS(30),
        shutdown_grace: SECS(5),
    }
}

struct Running {
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<(), BusError>>,
    settled: broadcast::Receiver<ferry_shared::bus::Settled>,
}

/// Start the builder's consumer in-process with the given handler.
fn start<F, Fut>(cfg: &BrokerConfig, f: F) -> Running
where
    F: Fn(Context, Envelope) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let metrics = Metrics::new("builder");
    let publisher = Publisher::new(cfg, "builder", Some(metrics.clone()));
    let consumer = Consumer::new(
        cfg.clone(),
        pipeline::stage("builder"),
        opts(),
        FnHandler(f),
        publisher,
        metrics,
    );
    let settled = consumer.settled();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(consumer.run(shutdown));
    Running {
        trigger,
        task,
        settled,
    }
}

impl Running {
    async fn next_settled(&mut self, timeout: Duration) -> SettledAs {
        tokio::time::timeout(timeout, self.settled.recv())
            .await
            .expect("no delivery settled in time")
            .expect("settled channel closed")
            .how
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.task
            .await
            .expect("consumer task panicked")
            .expect("consumer failed");
    }
}

async fn declare(cfg: &BrokerConfig) {
    let conn = lapin::Connection::connect(cfg.url.expose(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    Topology::for_stage(cfg, &pipeline::stage("builder"))
        .declare(&ch)
        .await
        .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

/// Publish, retrying while the broker is still coming back.
async fn publish_eventually(p: &Publisher, e: &Envelope, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match p.publish(e).await {
            Ok(()) => return start.elapsed(),
            Err(err) if start.elapsed() < within => {
                eprintln!("publish not yet possible: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("publisher did not recover within {within:?}: {err}"),
        }
    }
}

#[tokio::test]
async fn confirmed_publish_survives_a_broker_crash() {
    let broker = PrivateBroker::start().unwrap();
    let cfg = broker_config(&broker.url());
    declare(&cfg).await;
    let event = source_changed("5");
    Publisher::new(&cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();

    broker.kill().unwrap();
    broker.restart().unwrap();

    let queue = queue_name(&cfg.namespace, "builder");
    let msg = get_one(&broker.url(), &queue)
        .await
        .unwrap()
        .expect("the confirmed message was lost");
    assert_eq!(Envelope::from_json(&msg.delivery.data).unwrap(), event);
}

#[tokio::test]
async fn unroutable_publish_is_an_error() {
    let cfg = broker_config(&amqp_url());
    let conn = lapin::Connection::connect(cfg.url.expose(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    declare_exchange(
        &conn.create_channel().await.unwrap(),
        &exchange_name(&cfg.namespace),
    )
    .await
    .unwrap();
    // The exchange exists but no queue is bound for source.changed.
    let err = Publisher::new(&cfg, "test", None)
        .publish(&source_changed("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err}");
    assert!(err.to_string().contains("source.changed"));
}

/// A negative confirm is not the end of a publish: the lane that got it is thrown away (on
/// RabbitMQ 3.10 a channel that got one from a leaderless quorum queue nacks everything
/// after) and the message is sent again on a fresh lane until the broker takes it or the
/// publish's deadline passes. Here the nacks come from a full `reject-publish` queue.
#[tokio::test]
async fn a_nacked_publish_is_sent_again_on_a_fresh_lane_until_the_broker_takes_it() {
    let cfg = broker_config(&amqp_url()); // publish timeout 3 s
    let queue = format!("{}.full", cfg.namespace);
    let conn = lapin::Connection::connect(cfg.url.expose(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-max-length".into(),
        lapin::types::AMQPValue::LongLongInt(1),
    );
    args.insert(
        "x-overflow".into(),
        lapin::types::AMQPValue::LongString("reject-publish".into()),
    );
    conn.create_channel()
        .await
        .unwrap()
        .queue_declare(queue.as_str().into(), Default::default(), args)
        .await
        .unwrap();
    let publisher = Publisher::new(&cfg, "test", None);
    let publish = |body: &'static [u8]| {
        let (p, q) = (publisher.clone(), queue.clone());
        async move {
            p.publish_raw("", &q, body, lapin::BasicProperties::default())
                .await
        }
    };
    publish(b"first").await.unwrap();

    // The queue is full: the second publish is nacked until the first message leaves.
    let started = Instant::now();
    let second = tokio::spawn(publish(b"second"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!second.is_finished(), "a nacked publish returned at once");
    let first = get_one(&amqp_url(), &queue).await.unwrap().unwrap();
    assert_eq!(first.delivery.data, b"first");
    second
        .await
        .unwrap()
        .expect("the publish was not sent again once the queue had room");
    assert!(started.elapsed() < SECS(3), "{:?}", started.elapsed());
    let stored = get_one(&amqp_url(), &queue).await.unwrap().unwrap();
    assert_eq!(stored.delivery.data, b"second");

    // With no room before the deadline, the publish fails as nacked, within its timeout.
    publish(b"third").await.unwrap();
    let started = Instant::now();
    let err = publish(b"fourth").await.unwrap_err();
    assert!(matches!(err, BusError::Nacked { .. }), "{err}");
    assert!(
        started.elapsed() <= Duration::from_millis(3_200),
        "{:?}",
        started.elapsed()
    );
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn publishing_to_an_unreachable_broker_fails_within_the_timeout() {
    let mut cfg = broker_config(&format!(
        "amqp://guest:guest@127.0.0.1:{}/%2f",
        ferry_testkit::free_port()
    ));
    cfg.publish_timeout_ms = 1_000;
    let started = Instant::now();
    let err = Publisher::new(&cfg, "test", None)
        .publish(&source_changed("1"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < SECS(3), "took {:?}", started.elapsed());
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn consumer_killed_before_ack_gets_the_message_redelivered() {
    let cfg = broker_config(&amqp_url());
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let first = start(&cfg, move |_ctx, e: Envelope| {
        let tx = started_tx.clone();
        async move {
            let _ = tx.send(e.event_id);
            std::future::pending::<Outcome>().await
        }
    });
    let event = source_changed("7");
    declare(&cfg).await;
    Publisher::new(&cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();
    let got = tokio::time::timeout(SECS(10), started_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, event.event_id);

    // Kill: the task and its connection vanish without an ack.
    first.task.abort();
    let _ = first.task.await;

    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let mut second = start(&cfg, move |ctx: Context, e: Envelope| {
        seen2.lock().unwrap().push((e.event_id, ctx.redelivered));
        async { Outcome::Done }
    });
    assert_eq!(second.next_settled(SECS(15)).await, SettledAs::Done);
    assert_eq!(*seen.lock().unwrap(), vec![(event.event_id, true)]);
    second.stop().await;
}

#[tokio::test]
async fn retry_later_waits_its_delays_then_parks_and_fails_the_run() {
    let cfg = broker_config(&amqp_url()); // 3 attempts, delays 300 ms and 600 ms
    let mut tap = Tap::new(&cfg.url.expose().clone(), &cfg.namespace, "build.failed")
        .await
        .unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls2 = calls.clone();
    let mut running = start(&cfg, move |ctx: Context, _e| {
        calls2.lock().unwrap().push((ctx.attempt, Instant::now()));
        async { Outcome::RetryLater("registry answered 503".into()) }
    });
    declare(&cfg).await;
    let event = source_changed("9");
    Publisher::new(&cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();

    assert_eq!(
        running.next_settled(SECS(10)).await,
        SettledAs::Retried {
            attempt: 1,
            delay_ms: 300
        }
    );
    assert_eq!(
        running.next_settled(SECS(10)).await,
        SettledAs::Retried {
            attempt: 2,
            delay_ms: 600
        }
    );
    let SettledAs::Parked { reason } = running.next_settled(SECS(10)).await else {
        panic!("not parked")
    };
    assert_eq!(reason, "gave up after 3 attempts: registry answered 503");

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    // The delay runs in the broker (a TTL in whole milliseconds on its own clock, from the
    // retry's publish), so a redelivery may come a few ms before the delay measured here from
    // the handler's start: allow that, not an early retry.
    let slack = Duration::from_millis(25);
    let gaps = [calls[1].1 - calls[0].1, calls[2].1 - calls[1].1];
    assert!(
        gaps[0] + slack >= Duration::from_millis(300),
        "first retry came too early: {:?} after the first call",
        gaps[0]
    );
    assert!(
        gaps[1] + slack >= Duration::from_millis(600),
        "second retry came too early: {:?} after the second call",
        gaps[1]
    );

    let parked = get_one(&amqp_url(), &parked_queue_name(&cfg.namespace, "builder"))
        .await
        .unwrap()
        .expect("nothing parked");
    let headers = &parked.delivery.properties;
    assert_eq!(
        ferry_shared::bus::headers::get_str(headers, "x-ferry-parked-reason").as_deref(),
        Some("gave up after 3 attempts: registry answered 503")
    );
    assert_eq!(
        Envelope::from_json(&parked.delivery.data).unwrap().event_id,
        event.event_id
    );

    let failed = tap.expect("build.failed", SECS(5)).await.unwrap();
    assert_eq!(failed.run_id, event.run_id);
    assert_eq!(failed.causation_id, Some(event.event_id));
    let Event::BuildFailed(f) = failed.event else {
        panic!()
    };
    assert_eq!((f.attempts, f.service.as_str()), (3, "builder"));
    running.stop().await;
    assert_eq!(
        queue_len(&amqp_url(), &queue_name(&cfg.namespace, "builder"))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn retry_later_then_done_is_handled_exactly_once_more() {
    let cfg = broker_config(&amqp_url());
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut running = start(&cfg, move |_ctx, _e| {
        let n = c.fetch_add(1, SeqCst);
        async move {
            if n == 0 {
                Outcome::RetryLater("not yet".into())
            } else {
                Outcome::Done
            }
        }
    });
    declare(&cfg).await;
    Publisher::new(&cfg, "test", None)
        .publish(&source_changed("2"))
        .await
        .unwrap();
    assert!(matches!(
        running.next_settled(SECS(10)).await,
        SettledAs::Retried { .. }
    ));
    assert_eq!(running.next_settled(SECS(10)).await, SettledAs::Done);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(calls.load(SeqCst), 2);
    running.stop().await;
}

#[tokio::test]
async fn give_up_parks_at_once_with_the_reason() {
    let cfg = broker_config(&amqp_url());
    let mut tap = Tap::new(cfg.url.expose(), &cfg.namespace, "*.failed.#")
        .await
        .unwrap();
    let mut running = start(&cfg, |_ctx, _e| async {
        Outcome::GiveUp("no Dockerfile in the build context".into())
    });
    declare(&cfg).await;
    Publisher::new(&cfg, "test", None)
        .publish(&source_changed("3"))
        .await
        .unwrap();
    assert_eq!(
        running.next_settled(SECS(10)).await,
        SettledAs::Parked {
            reason: "no Dockerfile in the build context".into()
        }
    );
    let failed = tap.expect("build.failed", SECS(5)).await.unwrap();
    let Event::BuildFailed(f) = failed.event else {
        panic!()
    };
    assert_eq!(f.attempts, 1);
    running.stop().await;
}

/// Ferry asks for small AMQP frames (memory per connection): an event far larger than
/// a frame still travels whole, and a reason longer than any frame still parks the
/// message (its header cut, the failure event keeping all of it).
#[tokio::test]
async fn a_large_event_travels_and_a_huge_reason_still_parks_it() {
    let cfg = broker_config(&amqp_url());
    let mut tap = Tap::new(cfg.url.expose(), &cfg.namespace, "*.failed.#")
        .await
        .unwrap();
    let reason = format!(
        "step 3/9 RUN make: {}",
        "error: undefined reference\n".repeat(8000)
    );
    let told = reason.clone();
    let seen = Arc::new(Mutex::new(None));
    let seen_in = seen.clone();
    let mut running = start(&cfg, move |_ctx, e| {
        let (told, seen) = (told.clone(), seen_in.clone());
        async move {
            if let Event::SourceChanged(s) = &e.event {
                *seen.lock().unwrap() = s.message.as_ref().map(String::len);
            }
            Outcome::GiveUp(told)
        }
    });
    declare(&cfg).await;
    let mut big = source_changed("4");
    let message = "a commit message of a size no frame holds ".repeat(5000);
    if let Event::SourceChanged(s) = &mut big.event {
        s.message = Some(message.clone());
    }
    Publisher::new(&cfg, "test", None)
        .publish(&big)
        .await
        .unwrap();
    assert!(matches!(
        running.next_settled(SECS(10)).await,
        SettledAs::Parked { .. }
    ));
    assert_eq!(*seen.lock().unwrap(), Some(message.len()));
    let failed = tap.expect("build.failed", SECS(5)).await.unwrap();
    let Event::BuildFailed(f) = failed.event else {
        panic!()
    };
    assert_eq!(f.reason, reason, "the failure event keeps the whole reason");
    let parked = get_one(&amqp_url(), &parked_queue_name(&cfg.namespace, "builder"))
        .await
        .unwrap()
        .expect("nothing parked");
    let kept: Envelope = serde_json::from_slice(&parked.delivery.data).unwrap();
    assert_eq!(kept, big, "the parked message is the event, whole");
    let header =
        ferry_shared::bus::headers::get_str(&parked.delivery.properties, "x-ferry-parked-reason")
            .unwrap();
    assert!(header.starts_with("step 3/9 RUN make: error"), "{header}");
    assert!(header.ends_with(&format!("(truncated, {} bytes)", reason.len())));
    running.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_is_retried_then_parked_without_killing_the_consumer() {
    let cfg = broker_config(&amqp_url());
    let mut running = start(&cfg, |_ctx, e: Envelope| async move {
        if e.project == "shop" {
            panic!("index out of bounds");
        }
        Outcome::Done
    });
    declare(&cfg).await;
    let p = Publisher::new(&cfg, "test", None);
    p.publish(&source_changed("4")).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            running.next_settled(SECS(10)).await,
            SettledAs::Retried { .. }
        ));
    }
    let SettledAs::Parked { reason } = running.next_settled(SECS(10)).await else {
        panic!()
    };
    assert!(
        reason.contains("handler panicked: index out of bounds"),
        "{reason}"
    );
    // Still consuming afterwards.
    let mut other = source_changed("4");
    other.project = "blog".into();
    p.publish(&other).await.unwrap();
    assert_eq!(running.next_settled(SECS(10)).await, SettledAs::Done);
    running.stop().await;
}

#[tokio::test]
async fn messages_that_are_not_events_are_parked_and_their_run_fails() {
    let cfg = broker_config(&amqp_url());
    let mut tap = Tap::new(cfg.url.expose(), &cfg.namespace, "build.failed")
        .await
        .unwrap();
    let mut running = start(&cfg, |_ctx, _e| async { Outcome::Done });
    declare(&cfg).await;
    let p = Publisher::new(&cfg, "test", None);
    let queue = queue_name(&cfg.namespace, "builder");
    p.publish_raw("", &queue, b"{not json", Default::default())
        .await
        .unwrap();
    let SettledAs::Parked { reason } = running.next_settled(SECS(10)).await else {
        panic!()
    };
    assert!(reason.contains("not a Ferry event"), "{reason}");

    // Readable envelope, unknown kind: parked, and the run still gets its failure.
    let mut json: serde_json::Value =
        serde_json::from_slice(&source_changed("1").to_json()).unwrap();
    json["kind"] = "source.exploded".into();
    p.publish_raw("", &queue, json.to_string().as_bytes(), Default::default())
        .await
        .unwrap();
    assert!(matches!(
        running.next_settled(SECS(10)).await,
        SettledAs::Parked { .. }
    ));
    let failed = tap.expect("build.failed", SECS(5)).await.unwrap();
    assert_eq!(failed.run_id.to_string(), json["run_id"].as_str().unwrap());
    running.stop().await;
    assert_eq!(
        queue_len(&amqp_url(), &parked_queue_name(&cfg.namespace, "builder"))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_message_that_kills_its_consumer_every_time_is_parked_not_looped() {
    let mut cfg = broker_config(&amqp_url());
    cfg.max_redeliveries = 2;
    declare(&cfg).await;
    let event = source_changed("13");
    Publisher::new(&cfg, "test", None)
        .publish(&event)
        .await
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    // Each consumer "crashes" (is aborted) while handling the message.
    for _ in 0..2 {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let r = runs.clone();
        let crashing = start(&cfg, move |_ctx, _e| {
            r.fetch_add(1, SeqCst);
            let _ = tx.send(());
            std::future::pending::<Outcome>()
        });
        tokio::time::timeout(SECS(10), rx.recv()).await.unwrap();
        crashing.task.abort();
        let _ = crashing.task.await;
    }
    let r = runs.clone();
    let mut survivor = start(&cfg, move |_ctx, _e| {
        r.fetch_add(1, SeqCst);
        async { Outcome::Done }
    });
    let SettledAs::Parked { reason } = survivor.next_settled(SECS(10)).await else {
        panic!("not parked")
    };
    assert!(
        reason.contains("delivered 2 times without an outcome"),
        "{reason}"
    );
    assert_eq!(
        runs.load(SeqCst),
        2,
        "the handler ran again on a poison message"
    );
    survivor.stop().await;
}

#[tokio::test]
async fn consumer_and_publisher_recover_when_the_broker_restarts_while_idle() {
    let broker = PrivateBroker::start().unwrap();
    let cfg = broker_config(&broker.url());
    let mut running = start(&cfg, |_ctx, _e| async { Outcome::Done });
    let publisher = Publisher::new(&cfg, "test", None);
    declare(&cfg).await;
    publisher.publish(&source_changed("1")).await.unwrap();
    assert_eq!(running.next_settled(SECS(10)).await, SettledAs::Done);

    broker.stop().unwrap();
    broker.restart().unwrap();
    let back = Instant::now();
    let took = publish_eventually(&publisher, &source_changed("2"), SECS(20)).await;
    assert_eq!(running.next_settled(SECS(20)).await, SettledAs::Done);
    eprintln!(
        "publisher recovered in {took:?}, consumer handled after {:?}",
        back.elapsed()
    );
    assert!(
        back.elapsed() < SECS(10),
        "recovery took {:?}",
        back.elapsed()
    );
    running.stop().await;
}

#[tokio::test]
async fn a_handler_busy_during_a_broker_crash_gets_its_message_back_and_finishes() {
    let broker = PrivateBroker::start().unwrap();
    let cfg = broker_config(&broker.url());
    let calls = Arc::new(AtomicU32::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = calls.clone();
    let mut running = start(&cfg, move |ctx: Context, e: Envelope| {
        let n = c.fetch_add(1, SeqCst);
        let _ = tx.send(n);
        async move {
            if n == 0 {
                tokio::time::sleep(SECS(4)).await;
            }
            let next = e.follow(
                Event::ImageBuilt(ferry_shared::event::ImageBuilt {
                    docker_millis: None,
                    build_host: None,
                    revision: "1".into(),
                    image: "r/x:1".into(),
                    config_commit: None,
                    build_log: None,
                }),
                None,
            );
            let _ = ctx.publisher.publish(&next).await;
            Outcome::Done
        }
    });
    declare(&cfg).await;
    Publisher::new(&cfg, "test", None)
        .publish(&source_changed("1"))
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(SECS(10), rx.recv()).await.unwrap(),
        Some(0)
    );

    broker.kill().unwrap();
    broker.restart().unwrap();

    assert_eq!(running.next_settled(SECS(30)).await, SettledAs::Done);
    assert!(
        calls.load(SeqCst) >= 2,
        "the message was not redelivered after the crash"
    );
    assert!(
        wait_until(SECS(5), || async {
            queue_len(&broker.url(), &queue_name(&cfg.namespace, "builder"))
                .await
                .unwrap_or(1)
                == 0
        })
        .await,
        "message still in the queue"
    );
    running.stop().await;
}

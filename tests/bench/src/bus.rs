use anyhow::Context as _;
use ferry_shared::bus::{Consumer, ConsumerOptions, Outcome, Publisher, SettledAs, Topology};
use ferry_shared::metrics::Metrics;
use ferry_shared::{pipeline, shutdown};
use ferry_testkit::{FnHandler, broker_config, source_changed};
use futures_util::{StreamExt, stream};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Concurrent publishes in the throughput run.
const WINDOW: usize = 256;
const PREFETCH: u16 = 128;
/// Messages of the unmeasured first throughput round.
const WARMUP: usize = 3_000;

pub struct Figures {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub msgs_per_s: f64,
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

/// Ferry's bus on `url`, with `addresses` as `broker.addresses` (a cluster's other nodes:
/// each connection of the publisher and the consumer then picks its node, as in
/// production).
pub async fn ferry(
    url: &str,
    addresses: &[String],
    hops: usize,
    msgs: usize,
) -> anyhow::Result<Figures> {
    let mut cfg = broker_config(url);
    cfg.addresses = addresses.to_vec();
    let spec = pipeline::stage("builder");
    {
        let conn = Connection::connect(url, ConnectionProperties::default()).await?;
        Topology::for_stage(&cfg, &spec)
            .declare(&conn.create_channel().await?)
            .await?;
        let _ = conn.close(200, "bye".into()).await;
    }
    let metrics = Metrics::new("bench");
    let publisher = Publisher::new(&cfg, "bench", None);
    let opts = ConsumerOptions {
        prefetch: PREFETCH,
        handler_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(5),
    };
    let consumer = Consumer::new(
        cfg.clone(),
        spec,
        opts,
        FnHandler(|_ctx, _e| async { Outcome::Done }),
        publisher.clone(),
        metrics,
    );
    let mut settled = consumer.settled();
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(consumer.run(stop));

    let event = source_changed("1");
    let mut lat = Vec::with_capacity(hops);
    for i in 0..hops + 200 {
        let t0 = Instant::now();
        publisher.publish(&event).await?;
        loop {
            let s = tokio::time::timeout(Duration::from_secs(10), settled.recv())
                .await
                .context("hop timed out")??;
            if s.how == SettledAs::Done {
                break;
            }
        }
        if i >= 200 {
            lat.push(t0.elapsed());
        }
    }
    let (p50_ms, p99_ms) = percentiles(lat);

    // A warm-up round (the broker's queue log, the lanes), then the measured one.
    let mut msgs_per_s = 0.0;
    for n in [WARMUP, msgs] {
        let t0 = Instant::now();
        let publishing = stream::iter(0..n)
            .map(|_| publisher.publish(&event))
            .buffer_unordered(WINDOW)
            .for_each(|r| async move { r.expect("publish failed") });
        let counting = async {
            let mut done = 0;
            while done < n {
                if tokio::time::timeout(Duration::from_secs(30), settled.recv())
                    .await
                    .expect("throughput run stalled")?
                    .how
                    == SettledAs::Done
                {
                    done += 1;
                }
            }
            anyhow::Ok(())
        };
        let (_, counted) = tokio::join!(publishing, counting);
        counted?;
        msgs_per_s = n as f64 / t0.elapsed().as_secs_f64();
    }
    trigger.trigger();
    task.await??;
    Ok(Figures {
        p50_ms,
        p99_ms,
        msgs_per_s,
    })
}

/// The same work with lapin alone: one confirm channel publishing persistent, mandatory
/// messages to a topic exchange, one consumer acking from a quorum queue.
pub async fn bare_lapin(url: &str, hops: usize, msgs: usize) -> anyhow::Result<Figures> {
    let queue = format!("bench-lapin-{}", uuid::Uuid::new_v4().simple());
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let pubch = conn.create_channel().await?;
    pubch
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    pubch
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    // The same path as Ferry's events: a durable topic exchange, routed by key.
    let exchange = format!("{queue}-x");
    pubch
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    pubch
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "source.changed".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await?;
    let conch = conn.create_channel().await?;
    conch
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = conch
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let (tx, mut acked) = mpsc::unbounded_channel();
    let consuming = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if d.ack(BasicAckOptions::default()).await.is_ok() {
                    let _ = tx.send(());
                }
            });
        }
    });
    let body = source_changed("1").to_json();
    let publish = || async {
        let confirm = pubch
            .basic_publish(
                exchange.as_str().into(),
                "source.changed".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "nacked");
        anyhow::Ok(())
    };

    let mut lat = Vec::with_capacity(hops);
    for i in 0..hops + 200 {
        let t0 = Instant::now();
        publish().await?;
        tokio::time::timeout(Duration::from_secs(10), acked.recv())
            .await
            .context("hop timed out")?;
        if i >= 200 {
            lat.push(t0.elapsed());
        }
    }
    let (p50_ms, p99_ms) = percentiles(lat);

    let mut msgs_per_s = 0.0;
    for n in [WARMUP, msgs] {
        let t0 = Instant::now();
        let publishing = stream::iter(0..n)
            .map(|_| publish())
            .buffer_unordered(WINDOW)
            .for_each(|r| async move { r.expect("publish failed") });
        let counting = async {
            for _ in 0..n {
                tokio::time::timeout(Duration::from_secs(30), acked.recv())
                    .await
                    .expect("throughput run stalled");
            }
        };
        tokio::join!(publishing, counting);
        msgs_per_s = n as f64 / t0.elapsed().as_secs_f64();
    }
    consuming.abort();
    // Clean-up only: a failure here does not change the figures.
    let _ = pubch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = pubch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(Figures {
        p50_ms,
        p99_ms,
        msgs_per_s,
    })
}

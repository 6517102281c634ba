//! Least privilege on the bus, against the real RabbitMQ: the users and permissions
//! `ferry broker users` generates, applied to a virtual host of the test's own, and
//! the consumer's refusal of events whose routing key does not match their body.

use ferry_shared::bus::topology::{
    direct_exchange_name, exchange_name, parked_queue_name, queue_name,
};
use ferry_shared::bus::{
    BusError, Consumer, ConsumerOptions, Latest, Lock, Outcome, Publisher, Settled, SettledAs,
    Topology, hold, users,
};
use ferry_shared::config::{BrokerConfig, FerryConfig};
use ferry_shared::event::{Decision, Envelope, Event};
use ferry_shared::metrics::Metrics;
use ferry_shared::pipeline;
use ferry_shared::secret::Secret;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use ferry_testkit::{FnHandler, broker_config, harness_var, queue_len, source_changed};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
        .env("HOME", harness_var("FERRY_TEST_RABBIT_DIR"))
        .args(["-q", "-n", &harness_var("FERRY_TEST_RABBIT_NODE")])
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A virtual host of the test's own (the admin user `guest` may do anything there),
/// with the generated users and permissions applied by running the generated script.
struct Vhost {
    name: String,
    cfg: FerryConfig,
    passwords: Vec<(&'static str, String)>,
}

impl Vhost {
    fn new() -> Self {
        let base = broker_config(&harness_var("FERRY_TEST_AMQP_URL"));
        let name = format!("ferry-{}", base.namespace);
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        let port = harness_var("FERRY_TEST_AMQP_PORT");
        let mut cfg =
            FerryConfig::from_toml_with_env("", std::path::Path::new("test.toml")).unwrap();
        cfg.broker = BrokerConfig {
            url: Secret::new(format!("amqp://guest:guest@127.0.0.1:{port}/{name}")),
            ..base
        };
        let passwords: Vec<(&'static str, String)> = ferry_shared::SERVICES
            .iter()
            .map(|s| (*s, uuid::Uuid::new_v4().simple().to_string()))
            .collect();
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(users::script(&cfg))
            .env("HOME", harness_var("FERRY_TEST_RABBIT_DIR"))
            .env(
                "RABBITMQCTL",
                format!(
                    "/usr/lib/rabbitmq/bin/rabbitmqctl -n {}",
                    harness_var("FERRY_TEST_RABBIT_NODE")
                ),
            );
        for (service, pw) in &passwords {
            sh.env(users::password_variable(service), pw);
        }
        let out = sh.output().unwrap();
        assert!(
            out.status.success(),
            "generated script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Running it again (e.g. after a password change) must work too.
        let again = sh.output().unwrap();
        assert!(
            again.status.success(),
            "second run failed: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        Self {
            name,
            cfg,
            passwords,
        }
    }

    fn admin(&self) -> BrokerConfig {
        self.cfg.broker.clone()
    }

    /// The broker settings `service` runs with: its own user.
    fn as_service(&self, service: &str) -> BrokerConfig {
        let pw = &self
            .passwords
            .iter()
            .find(|(s, _)| *s == service)
            .unwrap()
            .1;
        let user = users::user_name(&self.cfg, service);
        let port = harness_var("FERRY_TEST_AMQP_PORT");
        BrokerConfig {
            url: Secret::new(format!("amqp://{user}:{pw}@127.0.0.1:{port}/{}", self.name)),
            ..self.cfg.broker.clone()
        }
    }

    async fn declare_all(&self) {
        let conn = Connection::connect(self.admin().url.expose(), ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        for stage in pipeline::stages() {
            Topology::for_stage(&self.admin(), &stage)
                .declare(&ch)
                .await
                .unwrap();
        }
        conn.close(200, "bye".into()).await.unwrap();
    }

    async fn len(&self, queue: &str) -> u32 {
        queue_len(self.admin().url.expose(), queue).await.unwrap()
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            for service in ferry_shared::SERVICES {
                rabbitmqctl(&["delete_user", &users::user_name(&self.cfg, service)]);
            }
            rabbitmqctl(&["delete_vhost", &self.name]);
        });
    }
}

fn approval_granted(env: &str) -> Envelope {
    let mut e = Envelope::new_run(
        "shop",
        Event::ApprovalGranted(Decision {
            revision: "7".into(),
            image: "registry.example/shop:7".into(),
            by: "mallory".into(),
            at: chrono::Utc::now(),
            comment: None,
        }),
    );
    e.environment = Some(env.into());
    e
}

fn image_built() -> Envelope {
    source_changed("7").follow(
        Event::ImageBuilt(ferry_shared::event::ImageBuilt {
            revision: "7".into(),
            image: "registry.example/shop:7".into(),
            config_commit: None,
            build_log: None,
            docker_millis: None,
            build_host: None,
        }),
        None,
    )
}

struct Running {
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<(), BusError>>,
    settled: broadcast::Receiver<Settled>,
    handled: Arc<AtomicU32>,
}

/// Run `service`'s consumer in-process with `cfg`, counting the events its handler sees.
fn start(cfg: &BrokerConfig, service: &'static str, outcome: Outcome) -> Running {
    let handled = Arc::new(AtomicU32::new(0));
    let seen = handled.clone();
    let metrics = Metrics::new(service);
    let consumer = Consumer::new(
        cfg.clone(),
        pipeline::stage(service),
        ConsumerOptions {
            prefetch: 4,
            handler_timeout: SECS(30),
            shutdown_grace: SECS(5),
        },
        FnHandler(move |ctx: ferry_shared::bus::Context, _e| {
            seen.fetch_add(1, SeqCst);
            let outcome = outcome.clone();
            async move {
                // Retry once, so the retry route is exercised with the stage's own user.
                if matches!(outcome, Outcome::Done) && ctx.attempt == 1 {
                    return Outcome::RetryLater("once".into());
                }
                outcome
            }
        }),
        Publisher::new(cfg, service, Some(metrics.clone())),
        metrics,
    );
    let settled = consumer.settled();
    let (trigger, shutdown) = shutdown::channel();
    Running {
        trigger,
        task: tokio::spawn(consumer.run(shutdown)),
        settled,
        handled,
    }
}

impl Running {
    async fn next(&mut self) -> SettledAs {
        tokio::time::timeout(SECS(15), self.settled.recv())
            .await
            .expect("no delivery settled in time")
            .expect("settled channel closed")
            .how
    }

    async fn stop(self) -> u32 {
        self.trigger.trigger();
        self.task.await.unwrap().expect("consumer failed");
        self.handled.load(SeqCst)
    }
}

/// Publish raw bytes with `routing_key` to `exchange` as the user of `cfg`; true when
/// the broker confirmed it.
async fn publish_as(cfg: &BrokerConfig, exchange: &str, routing_key: &str, body: &[u8]) -> bool {
    let conn = Connection::connect(cfg.url.expose(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let sent = match ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
    {
        Ok(confirm) => matches!(confirm.await, Ok(Confirmation::Ack(None))),
        Err(_) => false,
    };
    let _ = conn.close(200, "bye".into()).await;
    sent
}

#[tokio::test]
async fn the_builders_user_cannot_publish_what_deploys_but_can_do_its_own_work() {
    let vh = Vhost::new();
    vh.declare_all().await;
    let ns = vh.cfg.broker.namespace.clone();
    let builder = vh.as_service("builder");
    let publisher = Publisher::new(&builder, "builder", None);

    // What a compromised build host would try: refused by the broker, nothing queued.
    let err = publisher
        .publish(&approval_granted("production"))
        .await
        .expect_err("the builder's user published approval.granted.production");
    assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");
    let mut deploy = approval_granted("production");
    deploy.event = Event::DeployRequested(ferry_shared::event::DeployRequested {
        revision: "7".into(),
        image: "registry.example/shop:7".into(),
        reason: "manual".into(),
        requested_by: Some("mallory".into()),
    });
    assert!(publisher.publish(&deploy).await.is_err());
    // Straight into the updater's queue through the default exchange: refused too.
    let updater_queue = queue_name(&ns, "rancher-updater");
    assert!(
        !publish_as(
            &builder,
            "",
            &updater_queue,
            &approval_granted("production").to_json()
        )
        .await
    );
    // ... and through another stage's direct exchange.
    assert!(
        !publish_as(
            &builder,
            &direct_exchange_name(&ns, "rancher-updater"),
            &updater_queue,
            &approval_granted("production").to_json()
        )
        .await
    );
    assert_eq!(vh.len(&updater_queue).await, 0);

    // Its own output goes through, to the pusher (and the notifier).
    publisher
        .publish(&image_built())
        .await
        .expect("image.built is the builder's own");
    assert_eq!(vh.len(&queue_name(&ns, "pusher")).await, 1);
    assert_eq!(vh.len(&updater_queue).await, 0);

    // The builder's stage runs on its own user: it declares its topology, consumes,
    // retries through its own exchange, parks, and publishes build.failed.
    let mut running = start(&builder, "builder", Outcome::Done);
    let receiver = Publisher::new(&vh.as_service("hook-receiver"), "hook-receiver", None);
    receiver.publish(&source_changed("8")).await.unwrap();
    assert!(matches!(running.next().await, SettledAs::Retried { .. }));
    assert_eq!(running.next().await, SettledAs::Done);
    assert_eq!(running.stop().await, 2);
    let mut giving_up = start(&builder, "builder", Outcome::GiveUp("broken".into()));
    receiver.publish(&source_changed("9")).await.unwrap();
    assert!(matches!(giving_up.next().await, SettledAs::Parked { .. }));
    giving_up.stop().await;
    assert_eq!(vh.len(&parked_queue_name(&ns, "builder")).await, 1);
    // build.failed reached the notifier (the pusher has only the image.built from above).
    assert_eq!(vh.len(&queue_name(&ns, "pusher")).await, 1);
    // image.built, both source.changed and the build.failed.
    assert_eq!(vh.len(&queue_name(&ns, "notifier")).await, 4);
    assert_eq!(vh.len(&updater_queue).await, 0);
}

#[tokio::test]
async fn an_event_whose_routing_key_does_not_match_its_body_is_parked_not_handled() {
    let cfg = broker_config(&harness_var("FERRY_TEST_AMQP_URL"));
    declare(&cfg, "rancher-updater").await;
    let mut updater = start(&cfg, "rancher-updater", Outcome::Done);
    let exchange = exchange_name(&cfg.namespace);

    // Published as `deploy.requested.staging` (a key its publisher may use), carrying
    // an approval for production.
    assert!(
        publish_as(
            &cfg,
            &exchange,
            "deploy.requested.staging",
            &approval_granted("production").to_json()
        )
        .await
    );
    let SettledAs::Parked { reason } = updater.next().await else {
        panic!("handled")
    };
    assert!(reason.contains("does not match"), "{reason}");
    assert!(reason.contains("approval.granted.production"), "{reason}");
    // Same kind, other environment.
    assert!(
        publish_as(
            &cfg,
            &exchange,
            "approval.granted.staging",
            &approval_granted("production").to_json()
        )
        .await
    );
    assert!(matches!(updater.next().await, SettledAs::Parked { .. }));
    // The matching event is handled (after one retry through the stage's own exchange).
    assert!(
        publish_as(
            &cfg,
            &exchange,
            "approval.granted.production",
            &approval_granted("production").to_json()
        )
        .await
    );
    assert!(matches!(updater.next().await, SettledAs::Retried { .. }));
    assert_eq!(updater.next().await, SettledAs::Done);
    assert_eq!(
        updater.stop().await,
        2,
        "only the matching event reached the handler"
    );
    assert_eq!(
        queue_len(
            cfg.url.expose(),
            &parked_queue_name(&cfg.namespace, "rancher-updater")
        )
        .await
        .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_queue_that_dead_letters_onto_the_events_exchange_cannot_smuggle_an_approval() {
    // The builder's user may declare queues under its own name and write to the events
    // exchange, so it can make a queue dead-letter with any routing key: the broker does
    // not check topic permissions there. The updater must refuse what arrives that way.
    let vh = Vhost::new();
    let ns = vh.cfg.broker.namespace.clone();
    vh.declare_all().await;
    let mut updater = start(
        &vh.as_service("rancher-updater"),
        "rancher-updater",
        Outcome::Done,
    );
    let builder = vh.as_service("builder");
    let conn = Connection::connect(builder.url.expose(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let evil = format!("{ns}.builder.evil");
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(0));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(exchange_name(&ns).into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("approval.granted.production".into()),
    );
    ch.queue_declare(evil.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .expect("the builder's user may declare a queue of its own");
    let direct = direct_exchange_name(&ns, "builder");
    ch.queue_bind(
        evil.as_str().into(),
        direct.as_str().into(),
        evil.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
    assert!(
        publish_as(
            &builder,
            &direct,
            &evil,
            &approval_granted("production").to_json()
        )
        .await
    );

    let SettledAs::Parked { reason } = updater.next().await else {
        panic!("handled")
    };
    assert!(reason.contains(&evil), "{reason}");
    assert_eq!(
        updater.stop().await,
        0,
        "the smuggled approval reached the updater's handler"
    );
}

async fn declare(cfg: &BrokerConfig, service: &str) {
    let conn = Connection::connect(cfg.url.expose(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    Topology::for_stage(cfg, &pipeline::stage(service))
        .declare(&ch)
        .await
        .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

fn approval_requested(env: &str) -> Envelope {
    let mut e = Envelope::new_run(
        "shop",
        Event::ApprovalRequested(ferry_shared::event::ApprovalRequested {
            revision: "7".into(),
            image: "registry.example/shop:7".into(),
            passed_in: None,
            expires_at: chrono::Utc::now(),
            canary_percent: None,
        }),
    );
    e.environment = Some(env.into());
    e
}

#[tokio::test]
async fn holds_locks_and_registers_work_with_the_generated_users_and_only_theirs() {
    let vh = Vhost::new();
    vh.declare_all().await;
    let updater = vh.as_service("rancher-updater");
    let receiver = vh.as_service("hook-receiver");
    let builder = vh.as_service("builder");

    // The updater's deploy lock and its register of recent requests.
    let lock = Lock::acquire(&updater, "deploy.shop.production", SECS(5))
        .await
        .unwrap()
        .expect("the lock is free");
    let latest = Latest::open(&updater, "deploy.shop.production")
        .await
        .unwrap();
    let newest = format!("svn:7 {}", uuid::Uuid::now_v7());
    latest.offer(&newest).await.unwrap();
    assert_eq!(latest.recent().await.unwrap(), vec![newest]);
    drop(lock);

    // A hold the updater places: the builder cannot take it, the receiver (the API) can.
    let request = approval_requested("production");
    hold::place(&updater, &request, SECS(600)).await.unwrap();
    let refused = hold::take(&builder, request.run_id, &["production"]).await;
    let Err(e) = refused else {
        panic!("the builder's user read a hold")
    };
    assert!(e.to_string().contains("ACCESS_REFUSED"), "{e}");
    let taken = hold::take(&receiver, request.run_id, &["production"])
        .await
        .unwrap()
        .expect("the receiver takes the hold");
    assert_eq!(taken.request.run_id, request.run_id);
    taken.settle().await.unwrap();

    // A hold that expires reaches the updater's handler as hold.expired.production
    // (dead-lettered from the hold queue: the one dead-lettering the consumer accepts).
    let mut running = start(&updater, "rancher-updater", Outcome::Done);
    hold::place(
        &updater,
        &approval_requested("production"),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    assert!(matches!(running.next().await, SettledAs::Retried { .. }));
    assert_eq!(running.next().await, SettledAs::Done);
    assert_eq!(running.stop().await, 2);
}

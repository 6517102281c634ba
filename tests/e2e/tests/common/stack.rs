//! The seven services in one process (each on its own consumer, over the real
//! RabbitMQ), for tests of what crosses stages.

use ferry_shared::bus::{Handler, StageSpec};
use ferry_shared::config::FerryConfig;
use ferry_shared::service::ServiceDefaults;
use ferry_shared::shutdown::{self, ShutdownTrigger};
use hook_receiver::HookReceiver;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Stack {
    pub hooks: SocketAddr,
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn spawn_stage<H: Handler>(
    cfg: &FerryConfig,
    spec: StageSpec,
    defaults: ServiceDefaults,
    h: H,
    stop: &shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    let stage = ferry_testkit::spawn_stage(cfg, spec, defaults, h).await;
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.wait_owned().await;
        stage.stop().await;
    })
}

pub async fn spawn_stack(cfg: Arc<FerryConfig>) -> Stack {
    let (trigger, stop) = shutdown::channel();
    let tasks = vec![
        spawn_stage(
            &cfg,
            builder::spec(),
            builder::DEFAULTS,
            builder::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
        spawn_stage(
            &cfg,
            pusher::spec(),
            pusher::DEFAULTS,
            pusher::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
        spawn_stage(
            &cfg,
            puller::spec(),
            puller::DEFAULTS,
            puller::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
        spawn_stage(
            &cfg,
            rancher_updater::spec(),
            rancher_updater::DEFAULTS,
            rancher_updater::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
        spawn_stage(
            &cfg,
            tester::spec(),
            tester::DEFAULTS,
            tester::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
        spawn_stage(
            &cfg,
            notifier::spec(),
            notifier::DEFAULTS,
            notifier::Stage::new(cfg.clone()),
            &stop,
        )
        .await,
    ];
    let receiver = HookReceiver::bind(cfg).await.unwrap();
    let hooks = receiver.addr;
    let mut tasks = tasks;
    tasks.push(tokio::spawn(async move {
        receiver.run_until_stopped(stop.wait_owned()).await.unwrap()
    }));
    Stack {
        hooks,
        trigger,
        tasks,
    }
}

impl Stack {
    pub async fn stop(self) {
        self.trigger.trigger();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

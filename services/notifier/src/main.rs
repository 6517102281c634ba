use ferry_shared::config::EXIT_BAD_CONFIG;
use ferry_shared::service::{StageService, block_on_service, load_config_or_exit};

fn main() -> std::process::ExitCode {
    let cfg = load_config_or_exit(notifier::SERVICE, notifier::DEFAULTS.host_files);
    block_on_service(notifier::SERVICE, async move {
        let stage = match notifier::Stage::try_new(cfg.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e}", notifier::SERVICE);
                std::process::exit(EXIT_BAD_CONFIG);
            }
        };
        let counters = stage.counters();
        let svc = StageService::bind(&cfg, notifier::spec(), notifier::DEFAULTS, stage).await?;
        counters.attach(&svc.metrics);
        tracing::info!(service = notifier::SERVICE, admin = %svc.admin_addr, "started");
        svc.run_until_stopped(ferry_shared::shutdown::signal())
            .await
    })
}

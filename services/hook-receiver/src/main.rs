fn main() -> std::process::ExitCode {
    let cfg = ferry_shared::service::load_config_or_exit(hook_receiver::SERVICE);
    ferry_shared::service::block_on_service(hook_receiver::SERVICE, async move {
        let app = hook_receiver::HookReceiver::bind(cfg).await?;
        app.run_until_stopped(ferry_shared::shutdown::signal())
            .await
    })
}

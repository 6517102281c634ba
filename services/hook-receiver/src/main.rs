fn main() -> std::process::ExitCode {
    let cfg = ferry_shared::service::load_config_or_exit(
        hook_receiver::SERVICE,
        ferry_shared::config::HostFiles::Skip,
    );
    // Thousands of connections need thousands of file descriptors.
    let fds = hook_receiver::door::raise_fd_limit();
    if fds.is_some_and(|n| n < cfg.hooks.max_connections as u64 + 64) {
        tracing::warn!(
            open_files = fds,
            max_connections = cfg.hooks.max_connections,
            "the open-files limit is below hooks.max_connections: raise LimitNOFILE / ulimit -n"
        );
    }
    ferry_shared::service::block_on_service(hook_receiver::SERVICE, async move {
        let app = hook_receiver::HookReceiver::bind(cfg).await?;
        app.run_until_stopped(ferry_shared::shutdown::signal())
            .await
    })
}

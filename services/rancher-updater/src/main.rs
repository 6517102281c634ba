fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(
        rancher_updater::spec(),
        rancher_updater::DEFAULTS,
        rancher_updater::Stage::new,
    )
}

fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(
        notifier::spec(),
        notifier::DEFAULTS,
        notifier::Stage::new,
    )
}

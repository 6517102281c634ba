fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main_with(
        builder::spec(),
        builder::DEFAULTS,
        builder::defaults,
        builder::Stage::new,
    )
}

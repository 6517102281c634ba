fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(builder::spec(), builder::DEFAULTS, builder::Stage::new)
}

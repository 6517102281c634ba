fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(pusher::spec(), pusher::DEFAULTS, pusher::Stage::new)
}

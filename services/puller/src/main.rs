fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(puller::spec(), puller::DEFAULTS, puller::Stage::new)
}

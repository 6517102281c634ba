fn main() -> std::process::ExitCode {
    ferry_shared::service::run_stage_main(tester::spec(), tester::DEFAULTS, tester::Stage::new)
}

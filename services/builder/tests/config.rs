//! A service binary refuses a bad configuration: exit 64, every problem named.

use std::process::{Command, Output};

fn run_builder(config: &str, env: &[(&str, &str)]) -> Output {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_builder"));
    cmd.env("FERRY_CONFIG", f.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_wrong_type_exits_64_naming_the_key() {
    let out = run_builder("[broker]\nmax_attempts = \"many\"\n", &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_attempts"), "{err}");
}

#[test]
fn a_bad_environment_override_exits_64_naming_the_key() {
    let out = run_builder("", &[("FERRY__SERVICES__BUILDER__PREFETCH", "0")]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("services.builder.prefetch"), "{err}");
}

#[test]
fn a_handler_timeout_beyond_the_consumer_timeout_is_refused() {
    let out = run_builder("[services.builder]\nhandler_timeout_secs = 2700\n", &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("services.builder.handler_timeout_secs") && err.contains("consumer_timeout"),
        "{err}"
    );
}

#[test]
fn a_missing_file_exits_64_and_says_how_to_point_at_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_builder"))
        .env("FERRY_CONFIG", "/nonexistent/ferry.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FERRY_CONFIG"));
}

#[test]
fn a_bad_word_in_an_override_exits_64_naming_the_key_and_the_words() {
    let out = run_builder(
        "[environments.prod]\ntarget = \"docker\"\n",
        &[
            ("FERRY__ENVIRONMENTS__PROD__TARGET", "kubernetes"),
            ("FERRY__PULL__POLICY", "most"),
        ],
    );
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [
        "environments.prod.target: `kubernetes` is not a target; use `docker` or `rancher`",
        "pull.policy: `most` is not a policy; use `all` or `any`",
    ] {
        assert!(err.contains(line), "{line} missing from:\n{err}");
    }
}

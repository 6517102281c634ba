//! The `ferry` binary as an operator runs it.

use std::path::Path;
use std::process::{Command, Output};

fn ferry(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .env("FERRY_CONFIG", config)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["config", "broker", "--config"] {
        assert!(text.contains(word), "`{word}` missing from --help:\n{text}");
    }
}

#[test]
fn config_check_exits_64_naming_every_bad_key() {
    let f = config_file("[broker]\nmax_attempts = 0\nnamespace = \"Bad Name\"\n");
    let out = ferry(f.path(), &["config", "check"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broker.max_attempts") && err.contains("broker.namespace"),
        "{err}"
    );
}

#[test]
fn config_show_never_prints_secrets() {
    let f = config_file(
        "[broker]\nurl = \"amqp://ferry:hunter2@127.0.0.1:5672/%2f\"\n[registry]\naddress = \"127.0.0.1:5000\"\nusername = \"ferry\"\npassword = \"s3cr3t-registry\"\n",
    );
    let out = ferry(f.path(), &["config", "show"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t-registry"),
        "{text}"
    );
    assert!(text.contains("[redacted]"));
}

/// `deploy/rabbitmq/definitions.json` is what the services declare with the default
/// settings. Regenerate: `ferry --config /dev/null broker definitions > deploy/rabbitmq/definitions.json`.
#[test]
fn shipped_definitions_equal_what_the_code_declares() {
    let f = config_file("");
    let out = ferry(f.path(), &["broker", "definitions"]);
    assert!(out.status.success());
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shipped_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rabbitmq/definitions.json");
    let shipped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shipped_path).unwrap()).unwrap();
    assert_eq!(
        generated, shipped,
        "deploy/rabbitmq/definitions.json is stale: regenerate it (see this test's doc)"
    );
}

#[test]
fn the_example_configuration_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ferry.example.toml");
    let out = ferry(&example, &["config", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

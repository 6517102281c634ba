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

fn inspect(args: &[&str], body: &[u8]) -> Output {
    inspect_with_secret(args, body, None)
}

/// With `secret`, FERRY_HOOK_SECRET is set to it.
fn inspect_with_secret(args: &[&str], body: &[u8], secret: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.env_remove("FERRY_HOOK_SECRET");
    if let Some(s) = secret {
        cmd.env("FERRY_HOOK_SECRET", s);
    }
    let mut child = cmd
        .args(["hook", "inspect"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits without reading stdin: a broken pipe
    // then is its answer, not the test's failure (the exit status and output tell).
    if let Err(e) = child.stdin.take().unwrap().write_all(body) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn github_fixture() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/hooks/tests/fixtures/github-push.json"),
    )
    .unwrap()
}

#[test]
fn hook_inspect_prints_the_normalized_trigger_and_never_the_secret() {
    let body = github_fixture();
    let sig = format!(
        "sha256={}",
        ferry_hooks::verify::hmac_sha256_hex("s3cret-hook", &body)
    );
    let sig_header = format!("X-Hub-Signature-256: {sig}");
    let out = inspect_with_secret(
        &[
            "--source",
            "github",
            "-H",
            "X-GitHub-Event: push",
            "-H",
            "X-GitHub-Delivery: 72d3162e",
            "-H",
            &sig_header,
        ],
        &body,
        Some("s3cret-hook"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["source"], "github");
    assert_eq!(json["repository"][0], "Codertocat/Hello-World");
    assert_eq!(json["reference"]["name"], "master");
    assert_eq!(json["revision"], "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(json["delivery_id"], "72d3162e");
    assert_eq!(json["changed_paths"][0], "README.md");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("s3cret-hook"));
}

#[test]
fn hook_inspect_says_why_a_hook_would_be_rejected_with_exit_2() {
    let body = github_fixture();
    let out = inspect_with_secret(
        &[
            "--source",
            "github",
            "-H",
            "X-GitHub-Event: push",
            "-H",
            "X-Hub-Signature-256: sha256=00",
        ],
        &body,
        Some("s3cret-hook"),
    );
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], 401);
    assert!(
        json["rejected"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256")
    );
    let out = inspect(
        &["--source", "svn", "-H", "Authorization: Bearer x"],
        b"{\"revision\": 0, \"repository_url\": \"svn://x\"}",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A secret on the command line is visible to every user (`ps`): `--secret` is refused
/// with what to do instead, and nothing is parsed; `--secret-file` checks the signature.
#[test]
fn hook_inspect_refuses_a_secret_on_the_command_line_and_reads_a_file() {
    let body = github_fixture();
    let sig_header = format!(
        "X-Hub-Signature-256: sha256={}",
        ferry_hooks::verify::hmac_sha256_hex("s3cret-hook", &body)
    );
    let base = [
        "--source",
        "github",
        "-H",
        "X-GitHub-Event: push",
        "-H",
        &sig_header,
    ];
    let refused = inspect(&[&base[..], &["--secret", "s3cret-hook"]].concat(), &body);
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty(), "the hook was parsed anyway");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--secret is refused"), "{said}");
    assert!(
        said.contains("FERRY_HOOK_SECRET") && said.contains("--secret-file"),
        "{said}"
    );
    assert!(!said.contains("s3cret-hook"), "{said}");

    let file = config_file("s3cret-hook\n");
    let path = file.path().to_str().unwrap();
    let good = inspect(&[&base[..], &["--secret-file", path]].concat(), &body);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let wrong = config_file("another-secret");
    let path = wrong.path().to_str().unwrap();
    let bad = inspect(&[&base[..], &["--secret-file", path]].concat(), &body);
    assert_eq!(bad.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(json["status"], 401);
}

#[test]
fn logs_prints_a_runs_build_log_or_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let run = "01a217c3-a6b7-75c6-9a90-1eddbbc6733b";
    std::fs::create_dir_all(dir.path().join(run)).unwrap();
    std::fs::write(
        dir.path().join(run).join("build.log"),
        "Step 1/2 : FROM x\n",
    )
    .unwrap();
    let f = config_file(&format!(
        "[build]\nlog_dir = \"{}\"\n",
        dir.path().display()
    ));
    let out = ferry(f.path(), &["logs", run]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Step 1/2 : FROM x\n");
    let out = ferry(f.path(), &["logs", "01a217c3-a6b7-75c6-9a90-000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("build.log_dir"));
    assert_eq!(
        ferry(f.path(), &["logs", "not-a-run"]).status.code(),
        Some(2)
    );
}

#[test]
fn environment_overrides_keep_strings_as_written_and_read_numbers_and_lists() {
    let file = config_file("[registry]\naddress = \"r\"\nusername = \"u\"\npassword = \"p\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--config", &file.path().to_string_lossy(), "config", "show"])
        .env("FERRY__REGISTRY__USERNAME", "007007")
        .env("FERRY__BROKER__MAX_ATTEMPTS", "3")
        .env("FERRY__BROKER__RETRY_DELAYS_MS", "100, 200")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["registry"]["username"], "007007",
        "a numeric-looking string changed"
    );
    assert_eq!(shown["broker"]["max_attempts"], 3);
    assert_eq!(
        shown["broker"]["retry_delays_ms"],
        serde_json::json!([100, 200])
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "--config",
            &file.path().to_string_lossy(),
            "config",
            "check",
        ])
        .env("FERRY__BROKER__MAX_ATTEMPTS", "many")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("broker.max_attempts"));
}

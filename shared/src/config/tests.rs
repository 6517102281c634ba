//! The configuration as a whole: problems reported together, keys and secrets.

use super::*;
use std::path::Path;

fn load(text: &str) -> Result<FerryConfig, ConfigError> {
    FerryConfig::from_toml_with_env(text, Path::new("test.toml"))
}

#[test]
fn an_empty_file_gives_working_defaults() {
    let cfg = load("").unwrap();
    assert_eq!(cfg.broker.namespace, "ferry");
    assert_eq!(cfg.broker.max_attempts, 5);
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let err = load(
        r#"
            [log]
            format = "xml"
            [broker]
            url = "http://nope"
            retry_delays_ms = []
            [services.builder]
            handler_timeout_secs = 3600
            [projects.shop]
            image = ""
            environments = ["nowhere"]
            source = { kind = "cvs", url = "x" }
            "#,
    )
    .unwrap_err()
    .to_string();
    for key in [
        "log.format",
        "broker.url",
        "broker.retry_delays_ms",
        "services.builder.handler_timeout_secs",
        "projects.shop.image",
        "projects.shop.environments",
        "projects.shop.source.kind",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

#[test]
fn a_misspelt_key_is_an_error_naming_it() {
    let err = load("[broker]\nnamespcae = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("namespcae"), "{err}");
}

#[test]
fn a_wrong_type_names_the_key() {
    let err = load("[broker]\nmax_attempts = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_attempts"), "{err}");
}

#[test]
fn a_rancher_environment_is_checked_at_start_up() {
    let err = load("[environments.prod]\ntarget = \"rancher\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("environments.prod.rancher"), "{err}");
    let err = load(
        r#"
            [environments.prod]
            target = "rancher"
            rancher = { url = "rancher.example.com", project_id = "1a5", service_id = "",
                        access_key = "k", secret_key = "s", on_leftover_upgraded = "finsh",
                        timeout_secs = 0, ca_file = "/nonexistent/ca.pem" }
            "#,
    )
    .unwrap_err()
    .to_string();
    for key in [
        "environments.prod.rancher.url",
        "environments.prod.rancher.service_id",
        "environments.prod.rancher.on_leftover_upgraded",
        "environments.prod.rancher.timeout_secs",
        "environments.prod.rancher.ca_file",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

#[test]
fn the_broker_password_is_never_printed() {
    let cfg = load("[broker]\nurl = \"amqp://u:topsecret@h:5672/%2f\"\n").unwrap();
    assert!(!format!("{cfg:?}").contains("topsecret"));
    assert!(!serde_json::to_string(&cfg).unwrap().contains("topsecret"));
}

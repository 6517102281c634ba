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
            addresses = ["rabbit2:5672", "rabbit3"]
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
        "broker.addresses[1]",
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

const RANCHER: &str = r#"rancher = { url = "https://rancher.example.com", project_id = "1a5",
    service_id = "1s12", access_key = "k", secret_key = "rancher-secret" }"#;

#[test]
fn one_word_keys_parse_into_enums() {
    let cfg = load(&format!(
        r#"
        [log]
        format = "json"
        [pull]
        policy = "any"
        [environments.staging]
        approval = "manual"
        [environments.qa]
        auto_confirm = false
        [environments.production]
        target = "rancher"
        {RANCHER}
        [projects.shop]
        image = "shop/web"
        source = {{ kind = "svn", url = "svn://svn.example.com/shop" }}
        "#
    ))
    .unwrap();
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.pull.policy, PullPolicy::Any);
    assert_eq!(cfg.projects["shop"].source.kind, SourceKind::Svn);
    let env = |name: &str| &cfg.environments[name];
    assert!(matches!(env("staging").target, Target::Docker));
    assert_eq!(env("staging").approval, Approval::Manual);
    assert!(
        env("qa").needs_approval(),
        "auto_confirm = false holds deploys"
    );
    assert_eq!(env("production").approval, Approval::Auto);
    match &env("production").target {
        Target::Rancher(r) => {
            assert_eq!((r.service_id.as_deref(), r.batch_size), (Some("1s12"), 1));
            assert_eq!(r.on_leftover_upgraded, LeftoverAction::Finish);
        }
        Target::Docker => panic!("production is a Rancher environment"),
    }
    assert_eq!(env("production").target.name(), "rancher");
    assert!(cfg.secret_values().contains(&"rancher-secret".to_owned()));
}

#[test]
fn a_bad_word_names_its_full_key_and_the_valid_words() {
    let err = load(
        r#"
        [log]
        format = "xml"
        [pull]
        policy = "most"
        [environments.production]
        target = "kubernetes"
        approval = "maybe"
        rancher = { url = "https://rancher.example.com", project_id = "1a5",
            service_id = "1s12", access_key = "k", secret_key = "s",
            on_leftover_upgraded = "finsh" }
        [projects.shop]
        image = "shop/web"
        source = { kind = "cvs", url = "x" }
        "#,
    )
    .unwrap_err()
    .to_string();
    for line in [
        "log.format: `xml` is not a log format; use `text` or `json`",
        "pull.policy: `most` is not a policy; use `all` or `any`",
        "environments.production.target: `kubernetes` is not a target; use `docker` or `rancher`",
        "environments.production.approval: `maybe` is not an approval mode; use `auto` or `manual`",
        "environments.production.rancher.on_leftover_upgraded: `finsh` is not an action for a \
         leftover upgrade; use `finish` or `rollback`",
        "projects.shop.source.kind: `cvs` is not a source kind; use `svn` or `git`",
    ] {
        assert!(err.contains(line), "{line} missing from:\n{err}");
    }
    assert!(
        err.contains("has 6 problem(s)"),
        "no other problem expected:\n{err}"
    );
}

#[test]
fn bad_words_and_every_other_problem_are_reported_together_by_key() {
    let problems = match load(
        r#"
        [log]
        format = "xml"
        [environments.production]
        target = "rancher"
        approval_timeout_secs = 0
        hosts = ["nowhere"]
        rancher = { url = "rancher.example.com", project_id = "", service_id = "1s12",
            access_key = "k", secret_key = "s", on_leftover_upgraded = "finsh" }
        [projects.shop]
        image = ""
        environments = ["production"]
        source = { kind = "cvs", url = "" }
        "#,
    ) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("{other:?}"),
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "environments.production.approval_timeout_secs",
            "environments.production.hosts",
            "environments.production.rancher.on_leftover_upgraded",
            "environments.production.rancher.project_id",
            "environments.production.rancher.url",
            "log.format",
            "projects.shop.image",
            "projects.shop.source.kind",
            "projects.shop.source.url",
        ]
    );
}

#[test]
fn target_rancher_without_its_table_is_one_problem() {
    let err = load("[environments.prod]\ntarget = \"rancher\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("environments.prod.rancher: is required with target = \"rancher\""),
        "{err}"
    );
    assert!(err.contains("has 1 problem(s)"), "{err}");
}

#[test]
fn a_rancher_table_under_a_docker_target_is_checked_but_not_used() {
    // An override can switch an environment to `docker` for a while without editing
    // the file: the table stays valid, and deploys go to the hosts.
    let cfg = load(&format!(
        "[environments.prod]\ntarget = \"docker\"\n{RANCHER}\n"
    ))
    .unwrap();
    assert!(matches!(cfg.environments["prod"].target, Target::Docker));
    assert!(cfg.environments["prod"].rancher().is_none());
    let err = load("[environments.prod]\ntarget = \"docker\"\nrancher = { url = \"x\", project_id = \"1a5\", service_id = \"1s1\", access_key = \"k\", secret_key = \"s\" }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("environments.prod.rancher.url"), "{err}");
}

/// A deploy host's client key is checked by the services that open it, and only there: a
/// hook-receiver or notifier container is not given the keys and still starts.
#[test]
fn host_credential_files_are_checked_only_where_they_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.toml");
    std::fs::write(
        &path,
        r#"
            [docker_hosts.prod]
            url = "tcp://10.0.0.12:2376"
            tls_dir = "/nonexistent/ferry-certs"
            [docker_hosts.edge]
            url = "ssh://deploy@10.0.0.13"
            ssh_key = "/nonexistent/id_ed25519"
            [environments.production]
            target = "rancher"
            [environments.production.rancher]
            url = "https://rancher.example.com"
            project_id = "1a5"
            service_id = "1s9"
            access_key = "AK"
            secret_key = "SK"
            host_tls_dir = "/nonexistent/rancher-hosts"
            "#,
    )
    .unwrap();
    let err = FerryConfig::load_for(&path, HostFiles::Check)
        .unwrap_err()
        .to_string();
    for key in [
        "docker_hosts.prod.tls_dir: /nonexistent/ferry-certs has no ca.pem",
        "docker_hosts.edge.ssh_key: /nonexistent/id_ed25519 is not a file",
        "environments.production.rancher.host_tls_dir: /nonexistent/rancher-hosts has no key.pem",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    // The CLI's `config check` sees the same.
    assert!(FerryConfig::load(&path).is_err());
    let cfg = FerryConfig::load_for(&path, HostFiles::Skip).unwrap();
    assert_eq!(cfg.docker_hosts.len(), 2);
}

#[test]
fn secret_and_plain_keys_must_be_key_patterns_and_not_both() {
    let with_keys = |keys: &str| {
        load(&format!(
            r#"
            [projects.shop]
            image = "shop"
            source = {{ kind = "svn", url = "svn://127.0.0.1/shop" }}
            [projects.shop.config_repo]
            url = "file:///ops"
            {keys}
            "#
        ))
    };
    let err =
        with_keys("secret_keys = [\"LICENSE_*\", \"MY KEY\", \"K\"]\nplain_keys = [\"K\", \"*\"]")
            .unwrap_err()
            .to_string();
    for needle in [
        "projects.shop.config_repo.secret_keys: `MY KEY` is not a key",
        "projects.shop.config_repo.plain_keys: `*` is not a key",
        "projects.shop.config_repo.plain_keys: `K` is also in secret_keys",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let ok = with_keys("secret_keys = [\"LICENSE_*\"]\nplain_keys = [\"PUBLIC_KEY\"]").unwrap();
    let rules = ok.projects["shop"]
        .config_repo
        .as_ref()
        .unwrap()
        .key_rules();
    assert!(rules.secret[0].matches("license_id"));
    assert!(rules.plain[0].matches("PUBLIC_KEY"));
}

#[test]
fn a_rancher_service_without_an_id_is_named_after_the_project_and_names_are_checked() {
    let text = |service: &str| {
        format!(
            r#"
            [environments.prod]
            target = "rancher"
            rancher = {{ url = "https://rancher.example.com", project_id = "1a5", access_key = "k",
                        secret_key = "s", stack = "{{project}}-{{env}}" {service} }}
            [projects.shop]
            image = "shop/web"
            environments = ["prod"]
            source = {{ kind = "svn", url = "svn://x/shop" }}
            [projects.my_app]
            image = "my/app"
            environments = ["prod"]
            source = {{ kind = "svn", url = "svn://x/app" }}
            "#
        )
    };
    let err = load(&text("")).unwrap_err().to_string();
    assert!(
        err.contains("environments.prod.rancher.stack") && err.contains("my_app-prod"),
        "{err}"
    );
    let cfg = load(&text(r#", service = "web""#).replace("my_app", "myapp")).unwrap();
    match &cfg.environments["prod"].target {
        Target::Rancher(r) => {
            assert_eq!(r.service_id, None);
            assert_eq!(
                r.names("shop", "prod"),
                ("shop-prod".to_owned(), "web".to_owned())
            );
        }
        Target::Docker => panic!("prod is a Rancher environment"),
    }
}

#[test]
fn stable_ports_are_checked_against_the_environment_its_slots_and_the_other_projects() {
    let err = load(
        r#"
        [proxy]
        bind_address = "localhost"
        drain_timeout_secs = 0
        [docker_hosts.h1]
        url = "unix:///run/docker.sock"
        [environments.staging]
        hosts = ["h1"]
        [projects.a]
        image = "a/web"
        environments = ["staging"]
        source = { kind = "svn", url = "svn://x/a" }
        [projects.a.container]
        ports = [9001, 9002]
        proxy_ports = { staging = 8080, production = 8081 }
        [projects.b]
        image = "b/web"
        environments = ["staging"]
        source = { kind = "svn", url = "svn://x/b" }
        [projects.b.container]
        ports = [9003, 9004]
        proxy_ports = { staging = 8080 }
        [projects.c]
        image = "c/web"
        environments = ["staging"]
        source = { kind = "svn", url = "svn://x/c" }
        [projects.c.container]
        ports = [9005, 9006]
        proxy_ports = { staging = 9005 }
        [projects."d; shutdown sessions"]
        image = "d/web"
        environments = ["staging"]
        source = { kind = "svn", url = "svn://x/d" }
        [projects."d; shutdown sessions".container]
        ports = [9007, 9008]
        proxy_ports = { staging = 8090 }
        "#,
    )
    .unwrap_err()
    .to_string();
    for (key, says) in [
        ("proxy.bind_address", "not an IP address"),
        ("proxy.drain_timeout_secs", "above 0"),
        (
            "projects.a.container.proxy_ports.production",
            "not an environment of a",
        ),
        (
            "projects.b.container.proxy_ports.staging",
            "also a in staging",
        ),
        (
            "projects.c.container.proxy_ports.staging",
            "other than the blue/green slots",
        ),
    ] {
        assert!(
            err.contains(key) && err.contains(says),
            "{key}: {says}\n{err}"
        );
    }
}

//! The docker target on a real Docker daemon, proved over HTTP on loopback: rolling
//! updates, a failed health check that leaves the old version serving, out-of-order
//! runs, and concurrent deploys of one environment.

mod common;

use common::*;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Endpoint, Envelope, Event, HostOutcome};
use ferry_shared::order::{OrderScale, RunOrder};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, free_port, unique_namespace};
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn rolling_update_health_gate_and_out_of_order_runs() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2, v3) = (
        web_image(&ns, "v1", true),
        web_image(&ns, "v2", true),
        web_image(&ns, "v3", false),
    );
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let stale = request(&project, &v1, "v0"); // created first: the oldest run

    // v1, then v2: the new version answers on the other port, the old one is retired.
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    publisher
        .publish(&request(&project, &v2, "v2"))
        .await
        .unwrap();
    let ok = tap
        .expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeploySucceeded(d) = &ok.event else {
        panic!()
    };
    assert_eq!(d.previous_image.as_deref(), Some(v1.as_str()));
    assert_eq!(serving(ports[1]).await.as_deref(), Some("v2"));
    assert_eq!(
        serving(ports[0]).await,
        None,
        "the old container still serves"
    );
    let retired = docker(
        &docker_hosts()[0],
        None,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("name=ferry-{project}-staging-retired"),
            "--format",
            "{{.Label \"io.ferry.revision\"}} {{.State}}",
        ],
    )
    .unwrap();
    assert_eq!(
        retired, "v1 exited",
        "the previous version must be kept, stopped"
    );
    let status = ferry_status(&ns, &project);
    assert_eq!(status[0]["environment"], "staging");
    assert_eq!(status[0]["host"], "h1");
    assert_eq!(status[0]["revision"], "v2", "{status}");
    assert_eq!(status[0]["image"], v2.as_str());

    // v3 fails its health check: removed, v2 keeps serving.
    publisher
        .publish(&request(&project, &v3, "v3"))
        .await
        .unwrap();
    let failed = tap
        .expect("deploy.failed.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("unhealthy") && f.reason.contains("previous version keeps serving"),
        "{}",
        f.reason
    );
    assert_eq!(serving(ports[1]).await.as_deref(), Some("v2"));
    assert_eq!(serving(ports[0]).await, None);

    // A run older than the one running is not deployed.
    publisher.publish(&stale).await.unwrap();
    tap.expect("deploy.superseded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(serving(ports[1]).await.as_deref(), Some("v2"));

    updater.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn two_deploys_of_one_environment_at_once_are_serialized() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v4, v5) = (web_image(&ns, "v4", true), web_image(&ns, "v5", true));
    // Two replicas, each free to take one of the two requests.
    let a = start_updater(&cfg).await;
    let b = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let (r4, r5) = (request(&project, &v4, "v4"), request(&project, &v5, "v5"));
    let (x, y) = tokio::join!(publisher.publish(&r4), publisher.publish(&r5));
    x.unwrap();
    y.unwrap();

    // What the updaters did (the tap also sees the requests themselves).
    let mut events: Vec<Envelope> = Vec::new();
    while events
        .iter()
        .filter(|e| !matches!(e.event, Event::DeployStarted(_)))
        .count()
        < 2
    {
        let e = tap
            .next(Duration::from_secs(60))
            .await
            .expect("deploys did not finish");
        if !matches!(e.event, Event::DeployRequested(_)) {
            events.push(e);
        }
    }
    // Never two deploys in flight: each start is followed by its own outcome before
    // anything else starts. (The older request may also stand down without starting.)
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    let mut in_flight = None;
    for e in &events {
        match e.event {
            Event::DeployStarted(_) => {
                assert!(in_flight.is_none(), "two deploys overlapped: {kinds:?}");
                in_flight = Some(e.run_id);
            }
            _ if in_flight == Some(e.run_id) => in_flight = None,
            _ => {}
        }
    }
    // Whatever the order, the newest run is what serves.
    let served = match serving(ports[0]).await {
        Some(v) => v,
        None => serving(ports[1]).await.unwrap_or_default(),
    };
    assert_eq!(served, "v5");
    a.stop().await;
    b.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn an_older_request_still_waiting_stands_down_for_a_newer_one() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config_with(&ns, &project, ports, "2", "");
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2, v3) = (
        web_image(&ns, "v1", true),
        web_image(&ns, "v2", true),
        web_image(&ns, "v3", true),
    );
    let a = start_updater(&cfg).await;
    let b = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let (r1, r2, r3) = (
        request(&project, &v1, "v1"),
        request(&project, &v2, "v2"),
        request(&project, &v3, "v3"),
    );
    // v1 deploys (taking about 2 s); meanwhile v2 and then the newer v3 are requested.
    publisher.publish(&r1).await.unwrap();
    tap.expect("deploy.started.staging", Duration::from_secs(20))
        .await
        .unwrap();
    publisher.publish(&r2).await.unwrap();
    publisher.publish(&r3).await.unwrap();

    let mut outcomes = std::collections::HashMap::new();
    while outcomes.len() < 3 {
        let e = tap
            .next(Duration::from_secs(60))
            .await
            .expect("deploys did not finish");
        if matches!(
            e.event,
            Event::DeploySucceeded(_) | Event::DeploySuperseded(_) | Event::DeployFailed(_)
        ) {
            outcomes.insert(e.run_id, e.kind());
        }
    }
    assert_eq!(outcomes[&r1.run_id], "deploy.succeeded");
    assert_eq!(
        outcomes[&r2.run_id], "deploy.superseded",
        "v2 was deployed although v3 was waiting"
    );
    assert_eq!(outcomes[&r3.run_id], "deploy.succeeded");
    let served = match serving(ports[0]).await {
        Some(v) => v,
        None => serving(ports[1]).await.unwrap_or_default(),
    };
    assert_eq!(served, "v3");
    a.stop().await;
    b.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn a_health_command_gates_the_switch_like_the_http_check() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config_with(
        &ns,
        &project,
        ports,
        "",
        r#"health_command = ["/bin/test", "-f", "/www/healthz"]"#,
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, broken) = (web_image(&ns, "v1", true), web_image(&ns, "v2", false));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    publisher
        .publish(&request(&project, &broken, "v2"))
        .await
        .unwrap();
    let failed = tap
        .expect("deploy.failed.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    assert!(
        f.reason.contains("the health command exited with 1"),
        "{}",
        f.reason
    );
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    updater.stop().await;
    cleanup(&project);
}

/// The running containers of the project on the host: `revision` per container.
/// What a killed updater leaves: revision `rev`'s container of run `run`, labelled as
/// the updater labels them, running `command` next to the serving one, not retired.
fn run_leftover(
    project: &str,
    image: &str,
    rev: &str,
    run: uuid::Uuid,
    port: u16,
    command: &[&str],
) {
    let name = format!("ferry-{project}-staging-leftover");
    let labels = [
        format!("io.ferry.project={project}"),
        "io.ferry.environment=staging".to_owned(),
        format!("io.ferry.revision={rev}"),
        format!("io.ferry.image={image}"),
        format!("io.ferry.run-id={run}"),
        format!("io.ferry.port={port}"),
    ];
    let mut args = vec!["run", "-d", "--network", "host", "--name", &name];
    for l in &labels {
        args.extend(["--label", l.as_str()]);
    }
    args.push(image);
    args.extend(command);
    docker(&docker_hosts()[0], None, &args).unwrap();
}

#[tokio::test]
async fn a_switch_interrupted_before_the_old_container_was_retired_is_finished_next_time() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2, v3) = (
        web_image(&ns, "v1", true),
        web_image(&ns, "v2", true),
        web_image(&ns, "v3", true),
    );
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();

    // What a killed updater leaves: v2 started and healthy next to v1, v1 not retired.
    let v2_request = request(&project, &v2, "v2");
    let port = ports[1];
    let command = [
        "/bin/httpd",
        "-f",
        "-p",
        &format!("127.0.0.1:{port}"),
        "-h",
        "/www",
    ];
    run_leftover(
        &project,
        &v2,
        "v2",
        v2_request.run_id.into(),
        port,
        &command,
    );
    assert_eq!(running_revisions(&project), ["v1", "v2"]);

    // The redelivered request finishes the switch instead of leaving two running.
    publisher.publish(&v2_request).await.unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(running_revisions(&project), ["v2"]);
    assert_eq!(serving(ports[1]).await.as_deref(), Some("v2"));
    assert_eq!(serving(ports[0]).await, None, "v1 still serves");

    // And the next deploy has a free port and is the only one serving.
    publisher
        .publish(&request(&project, &v3, "v3"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(running_revisions(&project), ["v3"]);
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v3"));
    updater.stop().await;
    cleanup(&project);
}

/// The switch stopped while the new container was still failing its health check: the
/// redelivered request must not take that container as done. It is checked, found
/// unhealthy, replaced by a new one, and only a healthy v2 retires v1.
#[tokio::test]
async fn an_unchecked_container_left_by_an_interrupted_switch_is_checked_before_it_goes_live() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2) = (web_image(&ns, "v1", true), web_image(&ns, "v2", true));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();

    // What a killed updater leaves: v2 started next to v1 but not (yet) serving.
    let v2_request = request(&project, &v2, "v2");
    let leftover = format!("ferry-{project}-staging-leftover");
    run_leftover(
        &project,
        &v2,
        "v2",
        v2_request.run_id.into(),
        ports[1],
        &["/bin/sleep", "3600"],
    );
    assert_eq!(running_revisions(&project), ["v1", "v2"]);

    publisher.publish(&v2_request).await.unwrap();
    let done = tap
        .expect("deploy.succeeded.staging", Duration::from_secs(60))
        .await
        .unwrap();
    let Event::DeploySucceeded(d) = &done.event else {
        panic!()
    };
    assert_eq!(d.hosts[0].outcome, "updated", "{d:?}");
    assert_eq!(running_revisions(&project), ["v2"]);
    assert_eq!(serving(ports[1]).await.as_deref(), Some("v2"));
    assert_eq!(serving(ports[0]).await, None, "v1 still serves");
    let gone = docker(&docker_hosts()[0], None, &["inspect", &leftover]);
    assert!(gone.is_err(), "the unhealthy leftover was kept");
    updater.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn a_docker_host_behind_tls_is_deployed_to_with_client_certificates() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let plain = config(&ns, &project, ports);
    // The same daemon as h1, reached over TCP with TLS client certificates.
    let tls_url = ferry_testkit::harness_var("FERRY_TEST_DOCKER_TLS_URL");
    let tls_dir = ferry_testkit::harness_var("FERRY_TEST_DOCKER_TLS_DIR");
    let cfg = edit_config(
        &ns,
        &format!("url = \"{}\"", docker_hosts()[0]),
        &format!("url = \"{tls_url}\"\n        tls_dir = \"{tls_dir}\""),
    );
    let text =
        std::fs::read_to_string(std::env::temp_dir().join(format!("ferry-{ns}.toml"))).unwrap();
    assert_eq!(cfg.broker.namespace, plain.broker.namespace);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let v1 = web_image(&ns, "v1", true);
    let updater = start_updater(&cfg).await;
    Publisher::new(&cfg.broker, "test", None)
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    // `ferry status` reads the host over TLS too.
    let status = ferry_status(&ns, &project);
    assert_eq!(status[0]["revision"], "v1", "{status}");

    // Without the certificates the daemon refuses, and start-up says what is missing.
    let broken = text.replace(&tls_dir, "/nonexistent");
    let err = FerryConfig::from_toml_with_env(&broken, Path::new("test.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker_hosts.h1.tls_dir") && err.contains("ca.pem"),
        "{err}"
    );
    updater.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn a_docker_host_over_ssh_is_deployed_to_through_dial_stdio() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let _ = config(&ns, &project, ports);
    // The second daemon, reached as `ssh://` (the test sshd lets its key run nothing
    // but `docker system dial-stdio` against it).
    let ssh_url = ferry_testkit::harness_var("FERRY_TEST_SSH_URL");
    let key = ferry_testkit::harness_var("FERRY_TEST_SSH_KEY");
    let cfg = edit_config(
        &ns,
        &format!("url = \"{}\"", docker_hosts()[0]),
        &format!(
            "url = \"{ssh_url}\"\n        ssh_key = \"{key}\"\n        address = \"127.0.0.1\""
        ),
    );
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let v1 =
        ferry_testkit::web_image(&docker_hosts()[1], &format!("web-{ns}"), "v1", true).unwrap();
    let updater = start_updater(&cfg).await;
    Publisher::new(&cfg.broker, "test", None)
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    let ok = tap
        .expect("deploy.succeeded.staging", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!matches!(ok.event, Event::DeployFailed(_)));
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    // It really runs on the second daemon.
    let on_h2 = docker(
        &docker_hosts()[1],
        None,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=io.ferry.project={project}"),
        ],
    )
    .unwrap();
    assert!(!on_h2.is_empty(), "not running on the ssh host's daemon");
    assert_eq!(ferry_status(&ns, &project)[0]["revision"], "v1");
    updater.stop().await;
    let _ = docker(&docker_hosts()[1], None, &["rm", "-f", &on_h2]);
}

#[tokio::test]
async fn replicas_on_one_host_each_switch_on_their_own_pair_of_ports() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let _ = config(&ns, &project, [ports[0], ports[1]]);
    let cfg = edit_config(
        &ns,
        &format!("ports = [{}, {}]", ports[0], ports[1]),
        &format!(
            "ports = [{}, {}, {}, {}]\n        replicas = 2",
            ports[0], ports[1], ports[2], ports[3]
        ),
    );
    assert_eq!(cfg.projects[&project].container.replicas, 2);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2) = (web_image(&ns, "v1", true), web_image(&ns, "v2", true));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    let ok = tap
        .expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeploySucceeded(d) = &ok.event else {
        panic!()
    };
    let hosts: Vec<&str> = d.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(hosts, ["h1/r0", "h1/r1"]);
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    assert_eq!(serving(ports[2]).await.as_deref(), Some("v1"));

    publisher
        .publish(&request(&project, &v2, "v2"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(running_revisions(&project), ["v2", "v2"]);
    for (old, new) in [(ports[0], ports[1]), (ports[2], ports[3])] {
        assert_eq!(serving(new).await.as_deref(), Some("v2"));
        assert_eq!(serving(old).await, None);
    }
    // Each replica keeps its own retired container for an instant rollback.
    let retired = docker(
        &docker_hosts()[0],
        None,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("name=ferry-{project}-staging-retired"),
            "--format",
            "{{.Names}}",
        ],
    )
    .unwrap();
    let mut retired: Vec<&str> = retired.lines().collect();
    retired.sort();
    assert_eq!(
        retired,
        [
            format!("ferry-{project}-staging-retired"),
            format!("ferry-{project}-staging-retired-r1")
        ]
    );
    updater.stop().await;
    cleanup(&project);
}

#[tokio::test]
async fn on_a_docker_network_the_app_port_is_published_on_the_slot() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let network = format!("ferry-net-{}", &ns[1..9]);
    let host = &docker_hosts()[0];
    docker(host, None, &["network", "create", &network]).unwrap();
    // The app listens on 8080 inside its own network namespace (on every interface, so
    // Docker's proxy reaches it), whatever the slot.
    let _ = config_with(
        &ns,
        &project,
        ports,
        "",
        &format!(
            "network = \"{network}\"\n        container_port = 8080\n        publish_address = \"127.0.0.1\""
        ),
    );
    let cfg = edit_config(&ns, "127.0.0.1:{port}", "0.0.0.0:{port}");
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2) = (web_image(&ns, "v1", true), web_image(&ns, "v2", true));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    for (image, v, slot) in [(&v1, "v1", ports[0]), (&v2, "v2", ports[1])] {
        publisher
            .publish(&request(&project, image, v))
            .await
            .unwrap();
        tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(serving(slot).await.as_deref(), Some(v));
    }
    assert_eq!(
        serving(ports[0]).await,
        None,
        "the old container still serves"
    );
    let mode = docker(
        host,
        None,
        &[
            "ps",
            "--filter",
            &format!("label=io.ferry.project={project}"),
            "--format",
            "{{.Networks}}",
        ],
    )
    .unwrap();
    assert_eq!(mode, network);
    updater.stop().await;
    cleanup(&project);
    let _ = docker(host, None, &["network", "rm", &network]);
}

/// The running container of the project: its id and its `io.ferry.order` label.
fn running_order(project: &str) -> (String, String) {
    let id = running_ids(project).join("\n");
    let label = docker(
        &docker_hosts()[0],
        None,
        &[
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.ferry.order\"}}",
            &id,
        ],
    )
    .unwrap();
    (id, label)
}

/// Order by the runs' places: what an older Ferry deployed (no place recorded) is
/// replaced by the next run; an older place ends superseded and restarts nothing; an
/// operator's run (`ferry deploy`) and a rollback go back as asked, but neither lowers
/// the recorded place, so a replay of anything in between still cannot go out.
#[tokio::test]
async fn older_places_are_superseded_while_operators_and_rollbacks_still_go_back() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2, v3, v4) = (
        web_image(&ns, "v1", true),
        web_image(&ns, "v2", true),
        web_image(&ns, "v3", true),
        web_image(&ns, "v4", true),
    );
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let git = |n| Some(RunOrder::new(OrderScale::Git, n));
    let serving_now = || async {
        match serving(ports[0]).await {
            Some(v) => Some(v),
            None => serving(ports[1]).await,
        }
    };
    // Publish `e` and wait for its outcome in staging.
    let mut deploy = async |e: Envelope| {
        publisher.publish(&e).await.unwrap();
        loop {
            let got = tap.next(Duration::from_secs(60)).await.expect("no outcome");
            let outcome = !matches!(
                got.event,
                Event::DeployStarted(_) | Event::DeployRequested(_)
            );
            if got.run_id == e.run_id && outcome {
                return got.kind();
            }
        }
    };

    // Deployed by an older Ferry: no place recorded.
    assert_eq!(
        deploy(at_place(&project, &v1, "v1", None)).await,
        "deploy.succeeded"
    );
    assert_eq!(
        running_order(&project).1,
        "",
        "an order label without a place"
    );
    // The next run replaces it and records its place.
    assert_eq!(
        deploy(at_place(&project, &v2, "v2", git(5))).await,
        "deploy.succeeded"
    );
    let v2_running = running_order(&project);
    assert_eq!(v2_running.1, "git:5");
    // An older commit (a replayed push), requested after: superseded, nothing restarted.
    assert_eq!(
        deploy(at_place(&project, &v3, "v3", git(3))).await,
        "deploy.superseded"
    );
    assert_eq!(serving_now().await.as_deref(), Some("v2"));
    assert_eq!(
        running_order(&project),
        v2_running,
        "a container was replaced"
    );

    // `ferry deploy` of an old revision goes out, and its place becomes the mark: an
    // operator's deploy is the way out of an environment pinned by an inflated history.
    let explicit = RunOrder {
        explicit: true,
        ..RunOrder::new(OrderScale::Git, 2)
    };
    assert_eq!(
        deploy(at_place(&project, &v1, "v1", Some(explicit))).await,
        "deploy.succeeded"
    );
    assert_eq!(serving_now().await.as_deref(), Some("v1"));
    assert_eq!(running_order(&project).1, "git:2");
    // A replay of a commit older than the operator's still cannot go out.
    assert_eq!(
        deploy(at_place(&project, &v3, "v3", git(1))).await,
        "deploy.superseded"
    );
    assert_eq!(serving_now().await.as_deref(), Some("v1"));

    // A newer commit goes out; a rollback takes it back and keeps its place, so neither
    // a replay of it (same place, other revision running) nor of an older one returns.
    // The rollback starts v1's retired container again: its label keeps v1's place, and
    // the place reached stays on v4's, retired in its turn.
    let v1_running = running_order(&project);
    assert_eq!(
        deploy(at_place(&project, &v4, "v4", git(6))).await,
        "deploy.succeeded"
    );
    assert_eq!(
        deploy(rollback(&project, "alice")).await,
        "deploy.rolled_back"
    );
    assert_eq!(serving_now().await.as_deref(), Some("v1"));
    assert_eq!(
        running_order(&project),
        v1_running,
        "not v1's own container"
    );
    for (image, v, place) in [(&v4, "v4", 6), (&v2, "v2", 5)] {
        assert_eq!(
            deploy(at_place(&project, image, v, git(place))).await,
            "deploy.superseded",
            "{v} came back after the rollback"
        );
        assert_eq!(serving_now().await.as_deref(), Some("v1"));
    }
    updater.stop().await;
    cleanup(&project);
}

/// Containers of `project` on the first host: `id image` lines, sorted.
fn project_containers(project: &str) -> String {
    let out = docker(
        &docker_hosts()[0],
        None,
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("label=io.ferry.project={project}"),
            "--format",
            "{{.ID}} {{.Image}} {{.Status}}",
        ],
    )
    .unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// A forged event (any broker user that can publish into the exchange) naming an image
/// that is not the project's (`image = "ferry-test/web-<ns>"`) never deploys: not as a
/// manual deploy, not as a rollback target, not from `image.pulled`. Each ends
/// `deploy.failed` saying why, and the project's containers are left as they were.
#[tokio::test]
async fn an_event_naming_another_projects_image_deploys_nothing() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let v1 = web_image(&ns, "v1", true);
    // Present on the host, healthy, and not the project's repository.
    let evil =
        ferry_testkit::web_image(&docker_hosts()[0], &format!("evil-{ns}"), "v1", true).unwrap();
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    publisher
        .publish(&request(&project, &v1, "v1"))
        .await
        .unwrap();
    tap.expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let before = project_containers(&project);
    assert!(before.contains(&v1), "{before}");

    let manual = request(&project, &evil, "v9");
    let mut rollback = request(&project, &evil, "v0");
    if let Event::DeployRequested(r) = &mut rollback.event {
        r.reason = "rollback".into();
    }
    let mut pulled = Envelope::new_run(
        &project,
        Event::ImagePulled(ferry_shared::event::ImagePulled {
            revision: "v8".into(),
            image: evil.clone(),
            hosts: vec![],
        }),
    );
    pulled.environment = Some("staging".into());
    for (what, forged) in [
        ("manual deploy", manual),
        ("rollback", rollback),
        ("image.pulled", pulled),
    ] {
        publisher.publish(&forged).await.unwrap();
        let failed = tap
            .expect_run(
                "deploy.failed.staging",
                forged.run_id,
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let Event::DeployFailed(f) = &failed.event else {
            panic!()
        };
        assert!(
            f.reason.contains(&format!("ferry-test/evil-{ns}")) && f.reason.contains("not project"),
            "{what}: {}",
            f.reason
        );
        assert!(
            !tap.saw("deploy.started.staging", |e| e.run_id == forged.run_id),
            "{what}: a deploy of the foreign image started"
        );
        assert_eq!(project_containers(&project), before, "{what}");
    }
    assert_eq!(serving(ports[0]).await.as_deref(), Some("v1"));
    updater.stop().await;
    cleanup(&project);
}

/// `deploy.succeeded` names where the run answers on each host, so the tester finds it
/// without reading the hosts; a deploy that found its image already running names the
/// container that serves it.
#[tokio::test]
async fn deploy_succeeded_names_where_the_run_answers() {
    let ns = unique_namespace();
    let project = format!("web{}", &ns[1..9]);
    let ports = [free_port(), free_port()];
    let cfg = config(&ns, &project, ports);
    let mut tap = Tap::new(&amqp_url(), &ns, "deploy.#").await.unwrap();
    let (v1, v2) = (web_image(&ns, "v1", true), web_image(&ns, "v2", true));
    let updater = start_updater(&cfg).await;
    let publisher = Publisher::new(&cfg.broker, "test", None);
    let address = cfg.docker_hosts["h1"].address();
    for (image, version, port) in [(&v1, "v1", ports[0]), (&v2, "v2", ports[1])] {
        publisher
            .publish(&request(&project, image, version))
            .await
            .unwrap();
        let done = tap
            .expect("deploy.succeeded.staging", Duration::from_secs(30))
            .await
            .unwrap();
        let Event::DeploySucceeded(d) = &done.event else {
            panic!()
        };
        let endpoints: Vec<(&str, Endpoint)> = d.endpoints().map(|(h, e)| (h, e.clone())).collect();
        assert_eq!(
            endpoints,
            [(
                "h1",
                Endpoint {
                    address: address.clone(),
                    port
                }
            )],
            "{d:?}"
        );
        assert_eq!(serving(port).await.as_deref(), Some(version));
    }
    // v2 again: nothing changes, and the event still says where it answers.
    publisher
        .publish(&request(&project, &v2, "v2"))
        .await
        .unwrap();
    let again = tap
        .expect("deploy.succeeded.staging", Duration::from_secs(30))
        .await
        .unwrap();
    let Event::DeploySucceeded(d) = &again.event else {
        panic!()
    };
    assert_eq!(d.hosts[0].outcome, HostOutcome::AlreadyRunning, "{d:?}");
    assert_eq!(d.endpoints().next().map(|(_, e)| e.port), Some(ports[1]));
    updater.stop().await;
    cleanup(&project);
}

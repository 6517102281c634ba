//! The plan's test container: run an image with a command on a Docker host, pass on
//! exit code 0, keep the end of its output (secrets scrubbed) for the report.

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptions,
};
use ferry_docker::labels::{LABEL_PROJECT, LABEL_TEST_RUN};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::CheckResult;
use ferry_shared::test_plan::TestContainer;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the container is run for.
pub struct Subject<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub run_id: String,
    pub revision: &'a str,
    /// The image just deployed (used for `image = "same"`).
    pub image: &'a str,
    pub target_url: &'a str,
}

pub struct Ran {
    pub check: CheckResult,
    pub output: String,
}

/// Run the test container; `Err` when the host could not run it at all (worth a retry).
pub async fn run(
    cfg: &FerryConfig,
    host: (&str, &str),
    c: &TestContainer,
    s: &Subject<'_>,
) -> Result<Ran, String> {
    let started = Instant::now();
    let (host_name, host_url) = host;
    let docker = match cfg.docker_hosts.get(host_name) {
        Some(h) => ferry_docker::connect_host(h).await,
        None => ferry_docker::connect(host_url).await,
    }
    .map_err(|e| e.to_string())?;
    let image = if c.image == "same" {
        s.image
    } else {
        c.image.as_str()
    };
    if docker.inspect_image(image).await.is_err() {
        let hosts = [(host_name.to_owned(), host_url.to_owned())];
        if let Some(e) = ferry_docker::pull::pull_all(cfg, image, &hosts)
            .await
            .into_iter()
            .find_map(|r| r.error)
        {
            return Err(format!("cannot get the test image {image}: {e}"));
        }
    }
    let name = format!(
        "ferry-test-{}-{}",
        s.project,
        &s.run_id[..8.min(s.run_id.len())]
    );
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&name, Some(force.clone())).await;
    let mut env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();
    env.extend([
        format!("FERRY_TARGET_URL={}", s.target_url),
        format!("FERRY_REVISION={}", s.revision),
        format!("FERRY_ENVIRONMENT={}", s.environment),
        format!("FERRY_RUN_ID={}", s.run_id),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: (!c.command.is_empty()).then(|| c.command.clone()),
        env: Some(env),
        labels: Some(HashMap::from([
            (LABEL_PROJECT.to_owned(), s.project.to_owned()),
            (LABEL_TEST_RUN.to_owned(), s.run_id.clone()),
        ])),
        host_config: Some(HostConfig {
            // The plan's `network`, by default isolated from the host's loopback: the
            // test image may carry a commit's code.
            network_mode: Some(c.network.engine_mode().to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| format!("cannot create the test container on {host_name}: {e}"))?;
    let result = execute(&docker, &name, c).await;
    let output = logs(&docker, &name, c.max_output_bytes).await;
    let _ = docker.remove_container(&name, Some(force)).await;
    let (passed, detail) = match result {
        Ok(0) => (true, None),
        Ok(code) => (
            false,
            Some(format!("the test container exited with {code}")),
        ),
        Err(Failure::Timeout) => (
            false,
            Some(format!(
                "the test container ran longer than {} s and was killed",
                c.timeout_secs
            )),
        ),
        Err(Failure::Docker(e)) => return Err(format!("the test container on {host_name}: {e}")),
    };
    let command = if c.command.is_empty() {
        format!("test container {image}")
    } else {
        format!("test container: {}", c.command.join(" "))
    };
    Ok(Ran {
        check: CheckResult {
            name: command,
            passed,
            millis: started.elapsed().as_millis() as u64,
            detail,
        },
        output,
    })
}

enum Failure {
    Timeout,
    Docker(String),
}

async fn execute(docker: &Docker, name: &str, c: &TestContainer) -> Result<i64, Failure> {
    docker
        .start_container(name, None)
        .await
        .map_err(|e| Failure::Docker(format!("did not start: {e}")))?;
    let wait = async {
        let mut stream = docker.wait_container(name, None::<WaitContainerOptions>);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(Failure::Docker(e.to_string())),
            None => Err(Failure::Docker(
                "the wait ended without an exit code".into(),
            )),
        }
    };
    match tokio::time::timeout(Duration::from_secs(c.timeout_secs), wait).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}

/// The last `max` bytes of stdout and stderr, interleaved as written.
async fn logs(docker: &Docker, name: &str, max: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(name, Some(options));
    let mut out: Vec<u8> = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.extend_from_slice(&chunk.into_bytes());
        if out.len() > max * 2 {
            out.drain(..out.len() - max);
        }
    }
    if out.len() > max {
        out.drain(..out.len() - max);
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! Building through the Docker Engine API and reading its stream to the end: any
//! error item fails the build, with the step that failed and its last output lines.

use crate::buildlog::BuildLog;
use crate::context::Context;
use crate::error::BuildError;
use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use ferry_shared::config::ContainerNetwork;
use futures_util::StreamExt;
use std::collections::HashMap;

pub struct Request<'a> {
    pub tag: &'a str,
    pub dockerfile: &'a str,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub network: &'a ContainerNetwork,
}

/// Build `context` as `req.tag`; the engine's output goes to `log`.
pub async fn build(
    docker: &Docker,
    mut context: Context,
    req: Request<'_>,
    log: &mut BuildLog,
) -> Result<(), BuildError> {
    // One LABEL step in the Dockerfile rather than one per label from the engine.
    let in_dockerfile = context.label_in_dockerfile(req.dockerfile, &req.labels);
    let none = HashMap::new();
    let labels = if in_dockerfile { &none } else { &req.labels };
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(req.dockerfile)
        .t(req.tag)
        .buildargs(&req.args)
        .labels(labels)
        .rm(true)
        .forcerm(true)
        // `build.network`, by default the engine's isolated network: RUN steps run a
        // commit's code, which must not reach the build host's loopback (the broker,
        // a local registry, the Docker API) or cloud metadata.
        .networkmode(req.network.engine_mode())
        .build();
    let body = bollard::body_stream(context.into_tar_stream());
    let mut stream = docker.build_image(options, None, Some(body));
    let mut step = String::from("(before the first step)");
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = &info.stream {
                    log.push(text);
                    if let Some(line) = text.lines().find(|l| l.starts_with("Step ")) {
                        step = line.trim().to_owned();
                    }
                }
                if let Some(detail) = info.error_detail {
                    let message = detail.message.unwrap_or_default();
                    log.push(&format!("{message}\n"));
                    return Err(BuildError::StepFailed {
                        step: log.scrub(&step),
                        tail: log.tail(12),
                    });
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                log.push(&format!("{error}\n"));
                return Err(BuildError::StepFailed {
                    step: log.scrub(&step),
                    tail: log.tail(12),
                });
            }
            Err(e) => return Err(BuildError::Engine(log.scrub(&e.to_string()))),
        }
    }
    Ok(())
}

/// The labels of a local image, if it exists.
pub async fn labels(docker: &Docker, tag: &str) -> Option<HashMap<String, String>> {
    let inspect = docker.inspect_image(tag).await.ok()?;
    Some(inspect.config.and_then(|c| c.labels).unwrap_or_default())
}

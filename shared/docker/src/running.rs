//! What runs on a Docker host: the containers Ferry started for a project and
//! environment, read back from their labels.

use crate::labels::*;
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use ferry_shared::order::OrderMark;
use std::collections::HashMap;
use uuid::Uuid;

/// A deploy Ferry runs, as read back from its labels (a container's, or a Rancher
/// service's launchConfig's).
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    /// The container's id (the service's, on Rancher).
    pub id: String,
    pub image: String,
    pub revision: String,
    pub run_id: Option<Uuid>,
    /// The environment's newest place deployed (label `io.ferry.order`).
    pub order: Option<OrderMark>,
    /// The blue/green port it serves on (0 where there is none, e.g. Rancher).
    pub port: u16,
    pub replica: u32,
    pub previous_image: Option<String>,
    pub previous_revision: Option<String>,
}

impl Running {
    /// Read from Ferry's labels, looked up by `label`. A label that is missing or
    /// unreadable leaves its field empty.
    pub fn from_labels<'a>(id: String, label: impl Fn(&str) -> Option<&'a str>) -> Self {
        let owned = |k: &str| label(k).map(str::to_owned);
        Self {
            id,
            image: owned(LABEL_IMAGE).unwrap_or_default(),
            revision: owned(LABEL_REVISION).unwrap_or_default(),
            run_id: label(LABEL_RUN).and_then(|r| Uuid::parse_str(r).ok()),
            order: mark_of(label(LABEL_ORDER)),
            port: label(LABEL_PORT)
                .and_then(|p| p.parse().ok())
                .unwrap_or_default(),
            replica: label(LABEL_REPLICA)
                .and_then(|r| r.parse().ok())
                .unwrap_or_default(),
            previous_image: owned(LABEL_PREVIOUS_IMAGE),
            previous_revision: owned(LABEL_PREVIOUS_REVISION),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot list the containers: {0}; check that the Docker host answers")]
pub struct ListError(#[from] pub bollard::errors::Error);

/// The running container of this project and environment on a host (the newest, if an
/// interrupted switch left two), if any.
pub async fn running(
    docker: &Docker,
    project: &str,
    environment: &str,
) -> Result<Option<Running>, ListError> {
    Ok(running_all(docker, project, environment)
        .await?
        .into_iter()
        .next())
}

/// Every running container of this project and environment on a host, newest first.
pub async fn running_all(
    docker: &Docker,
    project: &str,
    environment: &str,
) -> Result<Vec<Running>, ListError> {
    let filters = HashMap::from([
        (
            "label",
            vec![
                format!("{LABEL_PROJECT}={project}"),
                format!("{LABEL_ENVIRONMENT}={environment}"),
            ],
        ),
        ("status", vec!["running".to_owned()]),
    ]);
    let mut list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await?;
    list.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or_default()));
    Ok(list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            Running::from_labels(c.id.unwrap_or_default(), |k| {
                labels.get(k).map(String::as_str)
            })
        })
        .collect())
}

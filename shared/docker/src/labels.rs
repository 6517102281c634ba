//! The `io.ferry.*` labels: what Ferry writes on the containers it runs (and on a
//! Rancher service's launchConfig), read back to tell what runs, what ran before and
//! which run put it there. The one place their names are spelled.

use ferry_shared::order::OrderMark;
use uuid::Uuid;

pub const LABEL_PROJECT: &str = "io.ferry.project";
pub const LABEL_ENVIRONMENT: &str = "io.ferry.environment";
pub const LABEL_REVISION: &str = "io.ferry.revision";
pub const LABEL_IMAGE: &str = "io.ferry.image";
/// The run that deployed the container (on a built image: the run that built it).
pub const LABEL_RUN: &str = "io.ferry.run-id";
/// The blue/green port slot the container serves on.
pub const LABEL_PORT: &str = "io.ferry.port";
/// Which of the host's replicas (0-based) a container is.
pub const LABEL_REPLICA: &str = "io.ferry.replica";
/// What ran before this container: where "roll back to the previous" goes.
pub const LABEL_PREVIOUS_IMAGE: &str = "io.ferry.previous-image";
pub const LABEL_PREVIOUS_REVISION: &str = "io.ferry.previous-revision";
/// The newest place deployed to the environment (`git:1234`, see `ferry_shared::order`).
/// Absent on what an older Ferry deployed.
pub const LABEL_ORDER: &str = "io.ferry.order";
/// On a built image: the config repo's commit overlaid on the code.
pub const LABEL_CONFIG_COMMIT: &str = "io.ferry.config-commit";
/// On a test container: the run it tests.
pub const LABEL_TEST_RUN: &str = "io.ferry.test-run";

/// The mark a label value gives; a value Ferry did not write counts as none (and says so).
pub fn mark_of(label: Option<&str>) -> Option<OrderMark> {
    let text = label?;
    match text.parse() {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("ignoring the environment's order label: {e}");
            None
        }
    }
}

/// What a deploy records about itself, wherever it runs.
pub struct Deployed<'a> {
    pub image: &'a str,
    pub revision: &'a str,
    pub run_id: Uuid,
    /// The environment's newest place after this deploy, if known.
    pub mark: Option<OrderMark>,
    /// What ran before it: `(image, revision)`.
    pub previous: Option<(&'a str, &'a str)>,
}

impl Deployed<'_> {
    /// The labels to set.
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        let mut labels = vec![
            (LABEL_IMAGE, self.image.to_owned()),
            (LABEL_REVISION, self.revision.to_owned()),
            (LABEL_RUN, self.run_id.to_string()),
        ];
        if let Some(mark) = self.mark {
            labels.push((LABEL_ORDER, mark.to_string()));
        }
        if let Some((image, revision)) = self.previous {
            labels.push((LABEL_PREVIOUS_IMAGE, image.to_owned()));
            labels.push((LABEL_PREVIOUS_REVISION, revision.to_owned()));
        }
        labels
    }
}

//! Payloads of the build half of a run: the source change, the built and the pushed image.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceChanged {
    /// `svn`, `gitlab`, `github`, `gitea` or `manual`.
    pub source: String,
    pub repository: String,
    /// Branch or tag, where the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the commit was made, where the forge says (the lead time for changes runs
    /// from it); otherwise lead time runs from when Ferry heard of the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_paths: Vec<String>,
    /// Set when a push to the project's config repo started the run: the code stays
    /// at `revision` (what runs in production) and the config is this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_change: Option<ConfigChange>,
}

/// A push to a project's config repo, as its run carries it: who and which files,
/// never the files' content (they hold the secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// The config repo's commit the run is built with.
    pub commit: String,
    /// Who changed it: the account the forge or git server authenticated, else the
    /// commit's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The project's files the push changed, relative to `config_repo.path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageBuilt {
    pub revision: String,
    /// `<registry>/<image>:<tag>`
    pub image: String,
    /// The config repo's commit overlaid on the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_commit: Option<String>,
    /// Where the build log is stored on the build host (`ferry logs <run>` reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_log: Option<String>,
    /// Time spent inside the Docker build (the rest of the stage is Ferry's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_millis: Option<u64>,
    /// The build engine that has the image (one of `build.docker_hosts`): the pusher
    /// pushes from it. None from an older Ferry: the first engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePushed {
    pub revision: String,
    /// `<registry>/<image>:<tag>@sha256:...`: later stages deploy by digest only.
    pub image: String,
    /// Time spent inside the Docker push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_millis: Option<u64>,
}

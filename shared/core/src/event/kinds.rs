//! The event kinds: one enum variant per `<stage>.<outcome>`, each with its payload type.

use super::wire::EventDecodeError;
use super::*;
use serde::{Deserialize, Serialize};

/// Declares the event kinds once: the enum with its wire names, the kinds without their
/// payloads (what a stage declares it takes), and the list of kinds.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($payload:ty) = $kind:literal,)*) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "payload")]
        pub enum Event {
            $($(#[$doc])* #[serde(rename = $kind)] $variant($payload),)*
        }

        impl Event {
            pub fn kind(&self) -> &'static str {
                match self { $(Event::$variant(_) => $kind,)* }
            }

            pub(super) fn serialize_payload<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(Event::$variant(p) => p.serialize(s),)* }
            }

            /// The event of `kind` whose payload is the JSON text `payload`.
            pub fn from_parts(kind: &str, payload: &str) -> Result<Event, EventDecodeError> {
                let bad = |source| EventDecodeError::Payload { kind: kind.to_owned(), source };
                match kind {
                    $($kind => serde_json::from_str::<$payload>(payload).map(Event::$variant).map_err(bad),)*
                    other => Err(EventDecodeError::UnknownKind(other.to_owned())),
                }
            }
        }

        /// Every kind Ferry publishes.
        pub const ALL_KINDS: &[&str] = &[$($kind),*];

        /// An event's kind without its payload, named like its [`Event`] variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($variant,)*
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &[EventKind] = &[$(EventKind::$variant),*];

            /// The kind's wire name, e.g. `image.built`.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $kind,)* }
            }
        }
    };
}

events! {
    /// A commit (or a manual trigger) that starts a run.
    SourceChanged(SourceChanged) = "source.changed",
    ImageBuilt(ImageBuilt) = "image.built",
    BuildFailed(StageFailed) = "build.failed",
    ImagePushed(ImagePushed) = "image.pushed",
    PushFailed(StageFailed) = "push.failed",
    /// Every host of one environment has the image.
    ImagePulled(ImagePulled) = "image.pulled",
    PullFailed(StageFailed) = "pull.failed",
    /// Promotion, manual deploy or rollback of an already pushed image.
    DeployRequested(DeployRequested) = "deploy.requested",
    DeployStarted(DeployStarted) = "deploy.started",
    DeploySucceeded(DeploySucceeded) = "deploy.succeeded",
    DeployFailed(StageFailed) = "deploy.failed",
    /// A newer run was already deployed: this older one is not (only rollbacks go back).
    DeploySuperseded(DeploySuperseded) = "deploy.superseded",
    /// The environment went back to an earlier image: a failed test, a failed health
    /// check after the deploy, or `ferry rollback`.
    DeployRolledBack(DeployRolledBack) = "deploy.rolled_back",
    TestPassed(TestReport) = "test.passed",
    /// The checks failed (`report` says which), or the tester gave up (no report).
    TestFailed(TestFailure) = "test.failed",
    /// The next environment needs a person's go-ahead (`ferry approve` / `ferry reject`).
    ApprovalRequested(ApprovalRequested) = "approval.requested",
    ApprovalGranted(Decision) = "approval.granted",
    ApprovalRejected(Decision) = "approval.rejected",
    /// Nobody answered before the hold expired: the run ends there.
    ApprovalExpired(Decision) = "approval.expired",
    NotifyFailed(StageFailed) = "notify.failed",
    /// `ferry scale`: serialized with the environment's deploys.
    ScaleRequested(ScaleRequested) = "scale.requested",
    ScaleSucceeded(ScaleSucceeded) = "scale.succeeded",
}

impl Event {
    /// The revision the event concerns, where it names one.
    pub fn revision(&self) -> Option<&str> {
        Some(String::as_str(match self {
            Event::SourceChanged(e) => &e.revision,
            Event::ImageBuilt(e) => &e.revision,
            Event::ImagePushed(e) => &e.revision,
            Event::ImagePulled(e) => &e.revision,
            Event::DeployRequested(e) => &e.revision,
            Event::DeployStarted(e) => &e.revision,
            Event::DeploySucceeded(e) => &e.revision,
            Event::DeploySuperseded(e) => &e.revision,
            Event::DeployRolledBack(e) => &e.revision,
            Event::TestPassed(e) => &e.revision,
            Event::TestFailed(TestFailure {
                report: Some(r), ..
            }) => &r.revision,
            Event::ApprovalRequested(e) => &e.revision,
            Event::ApprovalGranted(e) | Event::ApprovalRejected(e) | Event::ApprovalExpired(e) => {
                &e.revision
            }
            _ => return None,
        }))
        .filter(|r| !r.is_empty())
    }

    /// The image the event concerns, where it names one.
    pub fn image(&self) -> Option<&str> {
        Some(String::as_str(match self {
            Event::ImageBuilt(e) => &e.image,
            Event::ImagePushed(e) => &e.image,
            Event::ImagePulled(e) => &e.image,
            Event::DeployRequested(e) => &e.image,
            Event::DeployStarted(e) => &e.image,
            Event::DeploySucceeded(e) => &e.image,
            Event::DeploySuperseded(e) => &e.image,
            Event::DeployRolledBack(e) => &e.image,
            Event::TestPassed(e) => &e.image,
            Event::ApprovalRequested(e) => &e.image,
            Event::ApprovalGranted(e) | Event::ApprovalRejected(e) | Event::ApprovalExpired(e) => {
                &e.image
            }
            _ => return None,
        }))
        .filter(|r| !r.is_empty())
    }
}

//! What each stage takes: one declaration per stage gives its input type, the kinds
//! it takes and the bindings of its queue (`pipeline::stages` derives the topology,
//! `deploy/rabbitmq/definitions.json` and the broker users' read rights from them).

use super::{Input, StageName, Takes};
use crate::event::{
    ApprovalRequested, Decision, DeployRequested, DeployRolledBack, DeployStarted, DeploySucceeded,
    DeploySuperseded, Event, EventKind, ImageBuilt, ImagePulled, ImagePushed, ScaleRequested,
    ScaleSucceeded, SourceChanged, StageFailed, TestFailure, TestReport,
};

/// Declares a stage's input: `Variant(Payload) from EventVariant at "binding"`. The
/// variant is the stage's name for the kind (usually the event's own), the binding
/// the topic pattern that brings it (several kinds may share one).
macro_rules! stage_input {
    (
        $(#[$doc:meta])*
        $name:ident: $service:literal takes for $stage:ident {
            $($(#[$vdoc:meta])* $variant:ident($payload:ty) from $event:ident at $binding:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $name {
            $($(#[$vdoc])* $variant($payload),)*
        }

        impl Input for $name {
            const SERVICE: &'static str = $service;
            const STAGE: StageName = StageName::$stage;
            const TAKES: &'static [Takes] = &[
                $(Takes { kind: EventKind::$event, binding: $binding },)*
            ];

            fn from_event(event: &Event) -> Option<Self> {
                match event {
                    $(Event::$event(p) => Some($name::$variant(p.clone())),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

stage_input! {
    /// The builder's input: a source change to build.
    BuildInput: "builder" takes for Build {
        SourceChanged(SourceChanged) from SourceChanged at "source.changed",
    }
}

stage_input! {
    /// The pusher's input: a built image to push.
    PushInput: "pusher" takes for Push {
        ImageBuilt(ImageBuilt) from ImageBuilt at "image.built",
    }
}

stage_input! {
    /// The puller's input: a pushed image to pull onto every environment's hosts.
    PullInput: "puller" takes for Pull {
        ImagePushed(ImagePushed) from ImagePushed at "image.pushed",
    }
}

stage_input! {
    /// The updater's input: the first environment after the pull, later ones on
    /// promotion, any on request.
    DeployInput: "rancher-updater" takes for Deploy {
        ImagePulled(ImagePulled) from ImagePulled at "image.pulled.*",
        TestPassed(TestReport) from TestPassed at "test.passed.*",
        TestFailed(TestFailure) from TestFailed at "test.failed.*",
        DeployRequested(DeployRequested) from DeployRequested at "deploy.requested.*",
        ApprovalGranted(Decision) from ApprovalGranted at "approval.granted.*",
        /// Only acted on where a canary may be held for the approval.
        ApprovalRejected(Decision) from ApprovalRejected at "approval.rejected.*",
        /// An approval hold whose time ran out: its `approval.requested` event,
        /// dead-lettered by RabbitMQ as `hold.expired.<env>` (see `bus::hold`).
        HoldExpired(ApprovalRequested) from ApprovalRequested at "hold.expired.*",
        ScaleRequested(ScaleRequested) from ScaleRequested at "scale.requested.*",
    }
}

stage_input! {
    /// The tester's input: a deploy to test.
    TestInput: "tester" takes for Test {
        DeploySucceeded(DeploySucceeded) from DeploySucceeded at "deploy.succeeded.*",
    }
}

stage_input! {
    /// The notifier's input: whatever a person may want to hear about, and the run's
    /// author, commit message and stage durations for the messages. This also gives
    /// every deploy event a queue: publishes are mandatory, so an event nobody takes is
    /// an error.
    NotifyInput: "notifier" takes for Notify {
        BuildFailed(StageFailed) from BuildFailed at "*.failed.#",
        PushFailed(StageFailed) from PushFailed at "*.failed.#",
        PullFailed(StageFailed) from PullFailed at "*.failed.#",
        DeployFailed(StageFailed) from DeployFailed at "*.failed.#",
        TestFailed(TestFailure) from TestFailed at "*.failed.#",
        NotifyFailed(StageFailed) from NotifyFailed at "*.failed.#",
        SourceChanged(SourceChanged) from SourceChanged at "source.changed",
        ImageBuilt(ImageBuilt) from ImageBuilt at "image.built",
        ImagePushed(ImagePushed) from ImagePushed at "image.pushed",
        ImagePulled(ImagePulled) from ImagePulled at "image.pulled.#",
        DeployStarted(DeployStarted) from DeployStarted at "deploy.started.#",
        DeploySucceeded(DeploySucceeded) from DeploySucceeded at "deploy.succeeded.#",
        DeploySuperseded(DeploySuperseded) from DeploySuperseded at "deploy.superseded.#",
        DeployRolledBack(DeployRolledBack) from DeployRolledBack at "deploy.rolled_back.#",
        TestPassed(TestReport) from TestPassed at "test.passed.#",
        ApprovalRequested(ApprovalRequested) from ApprovalRequested at "approval.#",
        ApprovalGranted(Decision) from ApprovalGranted at "approval.#",
        ApprovalRejected(Decision) from ApprovalRejected at "approval.#",
        ApprovalExpired(Decision) from ApprovalExpired at "approval.#",
        ScaleSucceeded(ScaleSucceeded) from ScaleSucceeded at "scale.succeeded.#",
    }
}

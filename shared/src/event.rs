//! The event model: one envelope for every message on the bus, a typed payload per kind.
//!
//! Wire format is JSON: the envelope's fields plus `kind` and `payload`, e.g.
//! `{"event_id":..,"run_id":..,"kind":"image.built","payload":{..},..}`.
//! The routing key is `<kind>[.<environment>]`, where a kind is `<stage>.<outcome>`,
//! so a binding such as `deploy.succeeded.*` or `*.failed.#` selects what a stage needs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod deploy_terms;
mod origin;
use crate::order::RunOrder;
pub use deploy_terms::{DeployReason, Endpoint, HostOutcome};
pub use origin::{GateOverride, Starter};

/// Version of the envelope layout. A consumer refuses (parks) an event with a newer
/// major version instead of guessing at fields it does not know.
pub const SCHEMA_VERSION: u16 = 1;

/// Namespace for deterministic event ids (see [`Envelope::follow`]).
const FERRY_EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_9a52_3c0b_4d8e_9a41_f3b2_7c55_e012);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; deterministic for events derived from another one, so a
    /// handler that runs twice publishes the same ids and consumers can drop repeats.
    pub event_id: Uuid,
    /// One per pipeline run, carried unchanged by every stage.
    pub run_id: Uuid,
    /// The event this one was produced in reaction to; `None` for the event that
    /// started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub schema_version: u16,
    pub time: DateTime<Utc>,
    pub project: String,
    /// Set for the kinds that concern one environment (pull, deploy, test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Set on a run that rebuilds an old revision only to roll this environment back
    /// (its image was gone from the registry): the run deploys there and nowhere else.
    /// Carried by every event of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// Who started the run (an operator, or the commit's author). Carried by every
    /// event of the run: the approval gate reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<Starter>,
    /// Set on a rebuilt rollback that an operator sent straight to `rollback_to`,
    /// skipping the environments before it and their tests. Carried by every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_override: Option<GateOverride>,
    /// The run's place among the project's runs (see `crate::order`): set by the stage
    /// that learns it (the builder, or the receiver for Harbor) and carried by every
    /// later event, so the updater compares places, never run ids or commit dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<RunOrder>,
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// The first event of a new pipeline run. A source change's author is taken as
    /// who started it (an operator's API call says otherwise).
    pub fn new_run(project: impl Into<String>, event: Event) -> Self {
        let started_by = match &event {
            Event::SourceChanged(s) => s.author.clone().map(Starter::Author),
            _ => None,
        };
        Self {
            event_id: Uuid::now_v7(),
            run_id: Uuid::now_v7(),
            causation_id: None,
            schema_version: SCHEMA_VERSION,
            time: Utc::now(),
            project: project.into(),
            environment: None,
            rollback_to: None,
            started_by,
            gate_override: None,
            order: None,
            event,
        }
    }

    /// The first event of a run whose id the caller chose (e.g. derived from a
    /// webhook's delivery id, so a redelivered hook yields the same ids).
    pub fn start_run(run_id: Uuid, project: impl Into<String>, event: Event) -> Self {
        let mut e = Self::new_run(project, event);
        e.run_id = run_id;
        e.event_id = Uuid::new_v5(&FERRY_EVENT_NAMESPACE, run_id.as_bytes());
        e
    }

    /// The event a stage publishes in reaction to this one: same run and project,
    /// causation set, and an id derived from this event's id and the new routing key.
    /// Running a handler twice therefore produces byte-for-byte the same ids, which is
    /// what lets the next stage recognise a repeat.
    pub fn follow(&self, event: Event, environment: Option<&str>) -> Self {
        let mut next = Self::caused_by(
            self.event_id,
            self.run_id,
            &self.project,
            event,
            environment,
        );
        next.rollback_to.clone_from(&self.rollback_to);
        next.started_by.clone_from(&self.started_by);
        next.gate_override.clone_from(&self.gate_override);
        next.order = self.order;
        next
    }

    /// [`Envelope::follow`] for when only the cause's ids are known (e.g. a message
    /// that could not be decoded as a whole).
    pub fn caused_by(
        cause: Uuid,
        run_id: Uuid,
        project: &str,
        event: Event,
        environment: Option<&str>,
    ) -> Self {
        let mut next = Self {
            event_id: Uuid::nil(),
            run_id,
            causation_id: Some(cause),
            schema_version: SCHEMA_VERSION,
            time: Utc::now(),
            project: project.to_owned(),
            environment: environment.map(str::to_owned),
            rollback_to: None,
            started_by: None,
            gate_override: None,
            order: None,
            event,
        };
        let mut name = cause.as_bytes().to_vec();
        name.extend_from_slice(next.routing_key().as_bytes());
        next.event_id = Uuid::new_v5(&FERRY_EVENT_NAMESPACE, &name);
        next
    }

    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }

    /// `<stage>.<outcome>[.<environment>]`
    pub fn routing_key(&self) -> String {
        match &self.environment {
            Some(env) => format!("{}.{}", self.kind(), env),
            None => self.kind().to_owned(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Written field by field rather than through `#[serde(flatten)]`, which buffers.
        #[derive(Serialize)]
        struct Wire<'a> {
            event_id: &'a Uuid,
            run_id: &'a Uuid,
            #[serde(skip_serializing_if = "Option::is_none")]
            causation_id: &'a Option<Uuid>,
            schema_version: u16,
            time: &'a DateTime<Utc>,
            project: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            environment: &'a Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            rollback_to: &'a Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            started_by: &'a Option<Starter>,
            #[serde(skip_serializing_if = "Option::is_none")]
            gate_override: &'a Option<GateOverride>,
            #[serde(skip_serializing_if = "Option::is_none")]
            order: &'a Option<RunOrder>,
            kind: &'static str,
            payload: PayloadRef<'a>,
        }
        let wire = Wire {
            event_id: &self.event_id,
            run_id: &self.run_id,
            causation_id: &self.causation_id,
            schema_version: self.schema_version,
            time: &self.time,
            project: &self.project,
            environment: &self.environment,
            rollback_to: &self.rollback_to,
            started_by: &self.started_by,
            gate_override: &self.gate_override,
            order: &self.order,
            kind: self.kind(),
            payload: PayloadRef(&self.event),
        };
        // Serialising plain data structs with string keys cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Decode an event. The payload is read straight into its kind's type (no
    /// intermediate buffering, which `#[serde(flatten)]` would do on every message).
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventDecodeError> {
        #[derive(Deserialize)]
        struct Wire<'a> {
            event_id: Uuid,
            run_id: Uuid,
            #[serde(default)]
            causation_id: Option<Uuid>,
            schema_version: u16,
            time: DateTime<Utc>,
            project: String,
            #[serde(default)]
            environment: Option<String>,
            #[serde(default)]
            rollback_to: Option<String>,
            #[serde(default)]
            started_by: Option<Starter>,
            #[serde(default)]
            gate_override: Option<GateOverride>,
            #[serde(default)]
            order: Option<RunOrder>,
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            payload: &'a serde_json::value::RawValue,
        }
        let w: Wire<'_> = serde_json::from_slice(bytes).map_err(EventDecodeError::Json)?;
        if w.schema_version > SCHEMA_VERSION {
            return Err(EventDecodeError::NewerSchema(w.schema_version));
        }
        Ok(Self {
            event_id: w.event_id,
            run_id: w.run_id,
            causation_id: w.causation_id,
            schema_version: w.schema_version,
            time: w.time,
            project: w.project,
            environment: w.environment,
            rollback_to: w.rollback_to,
            started_by: w.started_by,
            gate_override: w.gate_override,
            order: w.order,
            event: Event::from_parts(&w.kind, w.payload.get())?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error(
        "the message is not a Ferry event: {0} (was it published by another tool to Ferry's exchange?)"
    )]
    Json(serde_json::Error),
    #[error(
        "event schema version {0} is newer than this service understands ({SCHEMA_VERSION}); upgrade the service"
    )]
    NewerSchema(u16),
    #[error("unknown event kind `{0}` (published by a newer Ferry?)")]
    UnknownKind(String),
    #[error("the `{kind}` payload is not valid: {source}")]
    Payload {
        kind: String,
        source: serde_json::Error,
    },
}

/// An event's payload alone, serialised as its own type.
struct PayloadRef<'a>(&'a Event);

impl Serialize for PayloadRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(s)
    }
}

/// Declares the event kinds once: the enum with its wire names, and the list of kinds.
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

            fn serialize_payload<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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

    /// The `<stage>.failed` event for a stage name as services declare it.
    pub fn failed(stage: &str, failure: StageFailed) -> Option<Event> {
        Some(match stage {
            "build" => Event::BuildFailed(failure),
            "push" => Event::PushFailed(failure),
            "pull" => Event::PullFailed(failure),
            "deploy" => Event::DeployFailed(failure),
            "test" => Event::TestFailed(TestFailure {
                failure,
                report: None,
            }),
            "notify" => Event::NotifyFailed(failure),
            _ => return None,
        })
    }
}

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_paths: Vec<String>,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostTiming {
    /// The host's name (`h1`; `h1/r1` for a host's second replica).
    pub host: String,
    pub millis: u64,
    #[serde(default, skip_serializing_if = "HostOutcome::is_unknown")]
    pub outcome: HostOutcome,
    /// Where the deployed run answers there (in `deploy.succeeded` and
    /// `deploy.rolled_back` of the `docker` target); none from an older Ferry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePulled {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRequested {
    /// Empty (with `image` empty) in a rollback: "what ran before", which the updater
    /// reads from the environment itself while it holds the deploy lock.
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    pub image: String,
    /// Only a rollback may go backwards.
    pub reason: DeployReason,
    /// The operator who asked (from their API token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployStarted {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// Set when this deploy goes back to an earlier image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRolledBack {
    /// What runs now.
    pub revision: String,
    pub image: String,
    /// What ran before the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    /// Why: a failed test, a failed health check, or who asked.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub revision: String,
    /// The image (by digest) that passed, and that approval deploys.
    pub image: String,
    /// The environment whose tests it passed; none when the held environment is the
    /// project's first (nothing was tested before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_in: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A person's (or the expiry's) answer to an approval request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub revision: String,
    pub image: String,
    /// The operator's name, or `ferry` for an expiry.
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySucceeded {
    pub revision: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// Per host and replica, in the environment's order: how long it took, and where
    /// the run answers there (see [`DeploySucceeded::endpoints`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTiming>,
}

impl DeploySucceeded {
    /// Where the run can be reached, per host and replica (`(host, endpoint)`, the
    /// environment's first host first). Empty for a target without Ferry's own
    /// containers (Rancher) and in an event of an older Ferry.
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, &Endpoint)> {
        self.hosts
            .iter()
            .filter_map(|h| Some((h.host.as_str(), h.endpoint.as_ref()?)))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySuperseded {
    pub revision: String,
    pub image: String,
    /// What runs there now, from a newer run (empty when the newer run is still
    /// waiting to be deployed).
    pub running_image: String,
    /// The newer run.
    pub running_run_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub revision: String,
    pub image: String,
    /// What the environment ran before this deploy: where a failure rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// The test container's output, size-capped, secrets scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub millis: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub millis: u64,
    /// For a failure: what was expected and what came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `test.failed`: the stage failure, plus the report when the checks themselves failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestFailure {
    #[serde(flatten)]
    pub failure: StageFailed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TestReport>,
}

/// Why a stage gave up on a run. Published as `<stage>.failed[.<env>]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageFailed {
    /// The service that failed, e.g. `builder`.
    pub service: String,
    /// What a person can act on.
    pub reason: String,
    /// How many times the handler ran before the bus gave up.
    pub attempts: u32,
    pub failed_event_id: Uuid,
    pub failed_kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Envelope {
        Envelope::new_run(
            "shop",
            Event::SourceChanged(SourceChanged {
                source: "svn".into(),
                repository: "svn://127.0.0.1/shop".into(),
                reference: None,
                revision: "5".into(),
                author: Some("alice".into()),
                message: None,
                changed_paths: vec![],
            }),
        )
    }

    #[test]
    fn wire_format_has_kind_and_payload_next_to_the_envelope_fields() {
        let json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
        assert_eq!(json["kind"], "source.changed");
        assert_eq!(json["payload"]["revision"], "5");
        assert_eq!(json["project"], "shop");
        assert_eq!(json["schema_version"], 1);
        assert!(json.get("environment").is_none());
    }

    #[test]
    fn the_fast_encoder_and_decoder_agree_with_the_derived_serde_form() {
        let e = source().follow(
            Event::DeploySucceeded(DeploySucceeded {
                revision: "5".into(),
                image: "r/x:5@sha256:00".into(),
                previous_image: Some("r/x:4@sha256:11".into()),
                hosts: vec![],
            }),
            Some("staging"),
        );
        let fast: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(fast, serde_json::to_value(&e).unwrap());
        let derived: Envelope = serde_json::from_value(fast).unwrap();
        assert_eq!(
            Envelope::from_json(&serde_json::to_vec(&derived).unwrap()).unwrap(),
            e
        );
    }

    /// A message in flight during an upgrade, as the previous version wrote it.
    #[test]
    fn deploy_events_of_the_previous_version_still_decode() {
        let old = r#"{"event_id":"0190b5a0-0000-7000-8000-000000000001","run_id":"0190b5a0-0000-7000-8000-000000000002","schema_version":1,"time":"2024-07-01T10:00:00Z","project":"shop","environment":"staging","kind":"deploy.succeeded","payload":{"revision":"5","image":"r/shop:5@sha256:00","previous_image":"r/shop:4@sha256:11","hosts":[{"host":"h1","millis":812,"outcome":"updated"},{"host":"h2","millis":0,"outcome":"already running"},{"host":"h3","millis":3}]}}"#;
        let e = Envelope::from_json(old.as_bytes()).unwrap();
        let Event::DeploySucceeded(d) = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!(d.hosts[0].outcome, HostOutcome::Updated);
        assert_eq!(d.hosts[1].outcome, HostOutcome::AlreadyRunning);
        assert_eq!(d.hosts[2].outcome, HostOutcome::Unknown);
        assert_eq!(d.endpoints().count(), 0, "an old event names no endpoints");
        // Written back, it is the same JSON.
        let again: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );

        let requested = r#"{"revision":"","image":"","reason":"rollback","requested_by":"alice"}"#;
        let r: DeployRequested = serde_json::from_str(requested).unwrap();
        assert_eq!(r.reason, DeployReason::Rollback);
        assert_eq!(serde_json::to_string(&r).unwrap(), requested);
        let pulled = r#"{"revision":"5","image":"r/shop:5@sha256:00","hosts":[{"host":"h1","millis":9,"outcome":"failed: no space left"}]}"#;
        let p: ImagePulled = serde_json::from_str(pulled).unwrap();
        assert_eq!(
            p.hosts[0].outcome,
            HostOutcome::Failed("no space left".into())
        );
        assert_eq!(serde_json::to_string(&p).unwrap(), pulled);
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let e = source();
        assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), e);
    }

    #[test]
    fn the_run_order_is_carried_by_every_following_event() {
        let mut e = source();
        e.order = Some(RunOrder::new(crate::order::OrderScale::Svn, 5));
        let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            json["order"],
            serde_json::json!({"scale": "svn", "value": 5})
        );
        assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), e);
        let next = e.follow(e.event.clone(), Some("staging"));
        assert_eq!(next.order, e.order);
        // Events of an older Ferry have none.
        assert_eq!(
            Envelope::from_json(&source().to_json()).unwrap().order,
            None
        );
    }

    #[test]
    fn routing_key_appends_the_environment() {
        let e = source();
        assert_eq!(e.routing_key(), "source.changed");
        let d = e.follow(
            Event::DeploySucceeded(DeploySucceeded {
                revision: "5".into(),
                image: "r/shop:5@sha256:00".into(),
                previous_image: None,
                hosts: vec![],
            }),
            Some("staging"),
        );
        assert_eq!(d.routing_key(), "deploy.succeeded.staging");
    }

    #[test]
    fn follow_is_deterministic_and_keeps_the_run() {
        let e = source();
        let built = Event::ImageBuilt(ImageBuilt {
            docker_millis: None,
            revision: "5".into(),
            image: "r/shop:5".into(),
            config_commit: None,
            build_log: None,
        });
        let a = e.follow(built.clone(), None);
        let b = e.follow(built, None);
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, e.event_id);
        assert_eq!(a.run_id, e.run_id);
        assert_eq!(a.causation_id, Some(e.event_id));
    }

    #[test]
    fn unknown_kind_and_newer_schema_are_errors_not_panics() {
        let mut json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
        json["kind"] = "nonsense.happened".into();
        assert!(Envelope::from_json(json.to_string().as_bytes()).is_err());
        let mut json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
        json["schema_version"] = 9.into();
        assert!(matches!(
            Envelope::from_json(json.to_string().as_bytes()),
            Err(EventDecodeError::NewerSchema(9))
        ));
        assert!(Envelope::from_json(b"{not json").is_err());
    }
}

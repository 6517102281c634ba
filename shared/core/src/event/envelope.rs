//! The envelope every event travels in: the run it belongs to, what caused it, and
//! what every stage of the run carries along.

use super::{Event, GateOverride, RunId, Starter};
use crate::order::RunOrder;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    pub run_id: RunId,
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
            run_id: RunId::new(),
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
    pub fn start_run(run_id: impl Into<RunId>, project: impl Into<String>, event: Event) -> Self {
        let run_id = run_id.into();
        let mut e = Self::new_run(project, event);
        e.run_id = run_id;
        e.event_id = Uuid::new_v5(&FERRY_EVENT_NAMESPACE, run_id.as_uuid().as_bytes());
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
        run_id: RunId,
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
}

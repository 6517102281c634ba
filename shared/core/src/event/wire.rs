//! The wire form: an envelope's fields plus `kind` and `payload`, written and read
//! without the buffering `#[serde(flatten)]` would do on every message.

use super::envelope::SCHEMA_VERSION;
use super::{Envelope, Event, GateOverride, RunId, Starter};
use crate::order::RunOrder;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

impl Envelope {
    pub fn to_json(&self) -> Vec<u8> {
        // Written field by field rather than through `#[serde(flatten)]`, which buffers.
        #[derive(Serialize)]
        struct Wire<'a> {
            event_id: &'a Uuid,
            run_id: &'a RunId,
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
            run_id: RunId,
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

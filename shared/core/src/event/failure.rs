//! What every `<stage>.failed` event carries.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

//! Rancher's error resources: plain errors (`error`), validation errors as gdapi renders
//! them (`code` and `fieldName`), and refused actions.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        axum::Json(
            json!({ "type": "error", "status": status.as_u16(), "code": code, "message": code }),
        ),
    )
        .into_response()
}

/// A validation error (code, fieldName).
pub(super) struct Invalid(pub(super) &'static str, pub(super) &'static str);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        invalid(self.0, self.1)
    }
}

/// A validation error as gdapi's `ValidationErrorImpl` renders it.
pub(super) fn invalid(code: &str, field: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "id": uuid::Uuid::new_v4().to_string(), "type": "error", "baseType": "error",
            "links": {}, "actions": {}, "status": 422, "code": code, "fieldName": field,
            "message": null, "detail": null,
        })),
    )
        .into_response()
}

pub(super) fn invalid_state(message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "type": "error", "baseType": "error", "status": 422, "code": "InvalidState",
            "fieldName": null, "message": message,
        })),
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NotFound")
}

/// An action the service's state does not allow (or, misbehaving, one a state change raced).
pub(super) fn action_not_available(action: &str, state: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "type": "error", "status": 422, "code": "ActionNotAvailable", "fieldName": "action",
            "message": format!("action {action} not available in state {state}")
        })),
    )
        .into_response()
}

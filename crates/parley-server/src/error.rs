//! The API's one error shape (SPEC §7): `{"error": {"code", "message", "details"}}`, each
//! kind of error with one status. Internal failures are logged and answered with an
//! opaque 500; nothing a client sends can cause one.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use parley_store::StoreError;
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// The answer for a workspace that does not exist, and for one the caller's token
    /// does not belong to: the same, so that nothing tells the two apart.
    pub fn no_workspace(ws: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown workspace {ws:?}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error: the server's log has the details",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Request(r) => ApiError::bad_request(r.to_string()),
            StoreError::FiltersNotApplicable { .. } => ApiError::bad_request(e.to_string()),
            StoreError::UnknownWorkspace(ws) => ApiError::no_workspace(&ws),
            StoreError::WorkspaceExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::UnknownToken => ApiError::not_found(e.to_string()),
            StoreError::InvalidBatch(ref event) => {
                let details = json!([{
                    "line": event.line,
                    "index": event.index,
                    "id": event.id,
                    "field": event.field,
                    "reason": event.reason,
                }]);
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_batch",
                    message: e.to_string(),
                    details,
                }
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(serde::Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            details: &'a Value,
        }
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

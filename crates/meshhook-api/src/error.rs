//! The API's error type: every failure answers with the contract's shape
//! `{"code", "detail", "errors"?}`. 4xx carry a precise, non-leaking
//! detail; 5xx are logged once here with the request's context and answer
//! an opaque message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One field-level problem, with a JSON pointer to the field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Error {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// An unexpected failure: logged here, answered opaquely.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server logged the details under this response's x-request-id",
        )
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            detail: &self.detail,
            errors: &self.errors,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<meshhook_db::Error> for Error {
    fn from(e: meshhook_db::Error) -> Self {
        Self::internal(e)
    }
}

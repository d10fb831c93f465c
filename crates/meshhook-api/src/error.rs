//! The API's error type: every failure answers with the contract's shape
//! `{"code", "detail", "errors"?}`. 4xx carry a precise, non-leaking
//! detail; 5xx answer an opaque message and are logged exactly once, when
//! the response is built (inside the request's span, which carries the
//! `x-request-id` the response also has).
//!
//! Database errors map by kind: a unique violation is 409 named after its
//! constraint, a check violation 422, a row-level-security refusal 403;
//! anything else is a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One field-level problem, with a JSON pointer to the field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/nodes/2/config/url`.
    pub path: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case, for programs.
    pub code: String,
    /// For humans.
    pub detail: String,
    /// Field-level problems, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answer.
#[derive(Debug)]
pub struct Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only (5xx).
    cause: Option<String>,
}

impl Error {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// Adds field-level problems.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422 with one field error at `path`.
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("{path}: {message}"),
        )
        .with_errors(vec![FieldError {
            path: path.to_owned(),
            message,
        }])
    }

    pub fn too_many_requests(retry_after: u64, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// An unexpected failure: logged when answered, answered opaquely.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server logged the details under this response's x-request-id",
        );
        e.cause = Some(err.to_string());
        e
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            // The one log line of a 5xx; the request span adds request_id.
            tracing::error!(
                status = self.status.as_u16(),
                code = self.code,
                cause = self.cause.as_deref().unwrap_or(&self.detail),
                "request failed"
            );
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            detail: self.detail,
            errors: self.errors,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// What a unique constraint means, by name: (code, detail).
fn unique_violation(constraint: &str) -> (&'static str, &'static str) {
    match constraint {
        "users_email_key" => ("email_taken", "an account with this email already exists"),
        "project_members_pkey" => ("already_member", "this user is already a member"),
        "secrets_project_name_key" => (
            "secret_exists",
            "a secret with this name already exists in the project",
        ),
        "api_keys_key_hash_key" => ("conflict", "key collision; try again"),
        "workflow_versions_workflow_version_key" | "workflow_versions_workflow_hash_key" => (
            "publish_conflict",
            "another publish of this workflow happened at the same time; try again",
        ),
        "webhooks_token_key" => ("conflict", "token collision; try again"),
        _ => ("conflict", "conflicts with an existing resource"),
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            match db.code().as_deref() {
                // unique_violation
                Some("23505") => {
                    let (code, detail) = unique_violation(db.constraint().unwrap_or_default());
                    return Self::conflict(code, detail);
                }
                // check_violation / not_null_violation / string too long
                Some("23514" | "23502" | "22001") => {
                    return Self::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        format!(
                            "the value breaks a rule of the data model{}",
                            db.constraint()
                                .map(|c| format!(" ({c})"))
                                .unwrap_or_default()
                        ),
                    );
                }
                // A NUL character: text and jsonb cannot store it.
                Some("22021" | "22P05") => {
                    return Self::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        "text must not contain NUL characters (\\u0000)",
                    );
                }
                // foreign_key_violation: a referenced row is gone.
                Some("23503") => {
                    return Self::conflict("conflict", "a referenced resource does not exist");
                }
                // insufficient_privilege, incl. "new row violates row-level security policy"
                Some("42501") => {
                    return Self::forbidden("your role does not allow this");
                }
                // query_canceled (statement_timeout)
                Some("57014") => {
                    let mut err = Self::unavailable("the database took too long; try again");
                    err.retry_after = Some(1);
                    err.cause = Some(e.to_string());
                    return err;
                }
                _ => {}
            }
        }
        if matches!(e, sqlx::Error::PoolTimedOut) {
            let mut err = Self::unavailable("the server is busy; try again");
            err.retry_after = Some(1);
            err.cause = Some(e.to_string());
            return err;
        }
        Self::internal(e)
    }
}

impl From<meshhook_db::Error> for Error {
    fn from(e: meshhook_db::Error) -> Self {
        match e {
            meshhook_db::Error::Sqlx(e) => e.into(),
            meshhook_db::Error::Gone(what) => Self::conflict(
                "conflict",
                format!("the {what} this refers to no longer exists"),
            ),
            other => Self::internal(other),
        }
    }
}

impl From<meshhook_db::vault::Error> for Error {
    fn from(e: meshhook_db::vault::Error) -> Self {
        use meshhook_db::vault::Error as V;
        match e {
            V::InvalidName(_) => Self::invalid(
                "/name",
                "letters, digits and `_`, not starting with a digit, at most 128 characters",
            ),
            V::Db(e) => e.into(),
            // Never echo a value; names and key ids only go to the log.
            other => Self::internal(other),
        }
    }
}

impl From<meshhook_orchestrator::engine::Error> for Error {
    fn from(e: meshhook_orchestrator::engine::Error) -> Self {
        use meshhook_orchestrator::engine::Error as E;
        match e {
            E::NotFound(what) => Self::not_found(what),
            E::NotPublished => {
                Self::conflict("not_published", "the workflow has no published version")
            }
            E::InvalidDefinition(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_definition",
                detail,
            ),
            E::Resume(detail) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_resume", detail)
            }
            E::Finished(status) => Self::conflict(
                "run_finished",
                format!("the run already finished ({status})"),
            ),
            E::Db(e) => e.into(),
            E::Sqlx(e) => e.into(),
            // Variants the engine may add later are server errors until
            // mapped here.
            #[allow(unreachable_patterns)]
            other => Self::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_opaque() {
        let e = Error::internal("password authentication failed for user secret");
        assert!(!e.detail.contains("secret"));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let res = Error::too_many_requests(30, "slow down").into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "30");
    }
}

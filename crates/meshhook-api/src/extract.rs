//! Extractors that answer in the contract's error shape instead of axum's
//! plain-text rejections:
//!
//! - [`Json`]: `Content-Type` must be JSON (else 415 `unsupported_media_type`);
//!   a body over the limit is 413 `payload_too_large`; syntactically broken
//!   JSON is 400 `malformed_json`; well-formed JSON of the wrong shape (wrong
//!   types, missing fields, **unknown fields**: every request DTO is
//!   `deny_unknown_fields`) is 422 `invalid_body` with the offending field's
//!   JSON pointer in `errors`.
//! - [`Path`] and [`Query`]: a malformed id or parameter is 400.
//! - [`ClientInfo`]: the client's address and user agent, for audit rows
//!   and rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Context;
use crate::error::{Error, FieldError};

/// A JSON request body (see the module docs) or response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `serde_path_to_error`'s path as a JSON pointer.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// Parses `bytes` as `T`, with the error mapping of the module docs:
/// first as JSON (syntax errors are 400), then as `T` (422).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = pointer(e.path());
        let message = e.into_inner().to_string();
        Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            if path.is_empty() {
                message.clone()
            } else {
                format!("{path}: {message}")
            },
        )
        .with_errors(vec![FieldError { path, message }])
    })
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is over the size limit",
                )
            } else {
                Error::bad_request("bad_body", "the request body could not be read")
            }
        })?;
        parse(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a malformed one is 400 `invalid_path`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| Error::bad_request("invalid_path", e.body_text()))
    }
}

/// Query parameters; a malformed one is 400 `invalid_query`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| Error::bad_request("invalid_query", e.body_text()))
    }
}

/// Who is on the other end: address (the TCP peer, or the first
/// `X-Forwarded-For` hop when `Settings::trust_forwarded_for` says a proxy
/// in front sets it) and user agent.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl<S> FromRequestParts<S> for ClientInfo
where
    S: Send + Sync,
    Context: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = Context::from_ref(state);
        Ok(client_info(parts, ctx.settings.trust_forwarded_for))
    }
}

pub(crate) fn client_info(parts: &Parts, trust_forwarded_for: bool) -> ClientInfo {
    let forwarded = trust_forwarded_for
        .then(|| {
            parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    ClientInfo {
        ip: forwarded.or(peer),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        name: String,
        nested: Option<Vec<Inner>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn errors_point_at_the_field() {
        let e = parse::<In>(br#"{"name": 1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].path, "/name");
        let e = parse::<In>(br#"{"name": "a", "nested": [{"n": 1}, {"n": "x"}]}"#).unwrap_err();
        assert_eq!(e.errors[0].path, "/nested/1/n");
        let e = parse::<In>(br#"{"name": "a", "bogus": 1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.detail.contains("bogus"), "{}", e.detail);
        let e = parse::<In>(br#"{}"#).unwrap_err();
        assert!(e.detail.contains("name"), "{}", e.detail);
        let e = parse::<In>(br#"{"name": "#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse::<In>(br#"{"name": "a"} trailing"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}

//! `/api/v1`: one module per resource, each owning its `router()`, its
//! `XIn`/`XOut` DTOs and its handlers. Request DTOs deny unknown fields.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod live;
pub mod meta;
pub mod metrics;
pub mod projects;
pub mod redaction;
pub mod runs;
pub mod secrets;
pub mod webhooks;
pub mod workflows;

use utoipa_axum::router::OpenApiRouter;

use crate::Context;

/// Every `/api/v1` route.
pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(projects::router())
        .merge(redaction::router())
        .merge(workflows::router())
        .merge(runs::router())
        .merge(live::router())
        .merge(secrets::router())
        .merge(webhooks::router())
        .merge(alerts::router())
        .merge(audit::router())
        .merge(metrics::router())
        .merge(meta::router())
}

/// Checks a display name: 1 to 200 characters, not blank. Returns it
/// trimmed.
pub(crate) fn check_name(path: &str, name: &str) -> Result<String, crate::Error> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(crate::Error::invalid(path, "must not be empty"));
    }
    if trimmed.chars().count() > 200 {
        return Err(crate::Error::invalid(
            path,
            "must be at most 200 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(crate::Error::invalid(
            path,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Opaque cursors: base64url of a small JSON value.
pub(crate) mod cursor {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::Error;

    pub fn encode<T: Serialize>(value: &T) -> String {
        B64.encode(serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, Error> {
        B64.decode(cursor)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                Error::bad_request("invalid_cursor", "the cursor is not one this API issued")
            })
    }
}

/// Clamps a page size: default `default`, at most `max`, at least 1.
pub(crate) fn page_limit(limit: Option<i64>, default: i64, max: i64) -> i64 {
    limit.unwrap_or(default).clamp(1, max)
}

/// For PATCH fields where `null` means something (clear, or a type error):
/// absent is `None`, `null` is `Some(None)`, a value is `Some(Some(v))`.
/// Use with `#[serde(default, deserialize_with = "super::double_option")]`.
pub(crate) fn double_option<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

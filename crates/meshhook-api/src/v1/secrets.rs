//! The secrets vault. Values are write-only: they go in through POST and
//! PUT, are sealed (AES-256-GCM envelope, bound to project and name)
//! before they reach SQL, and never come back out: answers show the id,
//! the name, a masked hint and timestamps. Members list names (editors
//! reference them as `{{ secrets.NAME }}`); admins create, replace and
//! delete. Every write is an audit row (never with the value); the
//! executor's decryptions are audited by `meshhook_db::vault::resolve`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use meshhook_db::secrets;
use meshhook_db::vault::Keyring;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Json, Path};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(create_secret, list_secrets))
        .routes(routes!(get_secret, replace_secret, delete_secret))
}

/// Longest accepted value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A secret value: `Debug` never shows it, and a value of the wrong type
/// is refused without being quoted back.
#[derive(ToSchema)]
#[schema(value_type = String, format = Password)]
pub struct Value(String);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'a> serde::de::Visitor<'a> for Visitor {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Value, E> {
                Err(E::custom("must be a string"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Value, E> {
                Err(E::custom("must be a string"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Value, E> {
                Err(E::custom("must be a string"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Value, E> {
                Err(E::custom("must be a string"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
                Err(E::custom("must be a string"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'a>>(self, _: A) -> Result<Value, A::Error> {
                Err(serde::de::Error::custom("must be a string"))
            }
            fn visit_map<A: serde::de::MapAccess<'a>>(self, _: A) -> Result<Value, A::Error> {
                Err(serde::de::Error::custom("must be a string"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // Best effort: overwrite the plaintext before the memory is freed.
        let bytes = std::mem::take(&mut self.0).into_bytes();
        let mut bytes = bytes;
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

impl Value {
    fn checked(&self) -> Result<&str, Error> {
        if self.0.is_empty() {
            return Err(Error::invalid("/value", "must not be empty"));
        }
        if self.0.len() > MAX_VALUE_BYTES {
            return Err(Error::invalid(
                "/value",
                format!("must be at most {MAX_VALUE_BYTES} bytes"),
            ));
        }
        Ok(&self.0)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    /// `[A-Za-z_][A-Za-z0-9_]{0,127}`; referenced as `{{ secrets.NAME }}`.
    pub name: String,
    /// Write-only.
    pub value: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretPut {
    /// The new value (write-only).
    pub value: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// The masked value, e.g. `sk_…f3a9` (`••••` for short values).
    pub masked: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<secrets::Meta> for SecretOut {
    fn from(m: secrets::Meta) -> Self {
        SecretOut {
            id: m.id,
            project_id: m.project_id,
            name: m.name,
            masked: m.hint,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

pub(crate) fn keyring(ctx: &Context) -> Result<Arc<Keyring>, Error> {
    ctx.settings
        .keyring
        .clone()
        .ok_or_else(|| Error::unavailable("the secrets vault is not configured (MESHHOOK_KEK)"))
}

/// Creates a secret (admins). A taken name is 409 `secret_exists`.
#[utoipa::path(post, path = "/api/v1/projects/{pid}/secrets", tag = "secrets",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = SecretIn,
    responses(
        (status = 201, body = SecretOut),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`secret_exists`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_secret(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<SecretIn>,
) -> Result<(StatusCode, Json<SecretOut>), Error> {
    let keyring = keyring(&ctx)?;
    if !secrets::is_valid_name(&input.name) {
        return Err(meshhook_db::vault::Error::InvalidName(String::new()).into());
    }
    let value = input.value.checked()?;
    let actor = caller.user_id();
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    let meta = secrets::create(s.conn(), pid, &input.name, value, &keyring, actor).await?;
    s.audit(
        Some(pid),
        "secret.create",
        Some(("secret", meta.id.to_string())),
        json!({ "name": meta.name, "kek_id": meta.kek_id }),
    )
    .await?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

/// The project's secrets, by name; never values (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/secrets", tag = "secrets",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = Vec<SecretOut>), (status = 404, body = ErrorBody)))]
async fn list_secrets(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<Vec<SecretOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let list = secrets::list(s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// One secret's metadata; never its value (members).
#[utoipa::path(get, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "secret id")),
    responses((status = 200, body = SecretOut), (status = 404, body = ErrorBody)))]
async fn get_secret(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<SecretOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let meta = secrets::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("secret"))?;
    s.require(meta.project_id, Role::Viewer, "secret").await?;
    s.commit().await?;
    Ok(Json(meta.into()))
}

/// Replaces a secret's value (admins).
#[utoipa::path(put, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "secret id")),
    request_body = SecretPut,
    responses((status = 200, body = SecretOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_secret(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Json(input): Json<SecretPut>,
) -> Result<Json<SecretOut>, Error> {
    let keyring = keyring(&ctx)?;
    let value = input.value.checked()?;
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = secrets::get(s.conn(), id).await?.map(|m| m.project_id);
    let (pid, _) = s.require_on(project, Role::Admin, "secret").await?;
    let meta = secrets::replace(s.conn(), id, value, &keyring)
        .await?
        .ok_or_else(|| Error::not_found("secret"))?;
    s.audit(
        Some(pid),
        "secret.update",
        Some(("secret", id.to_string())),
        json!({ "name": meta.name, "kek_id": meta.kek_id }),
    )
    .await?;
    s.commit().await?;
    Ok(Json(meta.into()))
}

/// Deletes a secret (admins).
#[utoipa::path(delete, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = Uuid, Path, description = "secret id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_secret(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = secrets::get(s.conn(), id).await?.map(|m| m.project_id);
    let (pid, _) = s.require_on(project, Role::Admin, "secret").await?;
    let meta = secrets::delete(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("secret"))?;
    s.audit(
        Some(pid),
        "secret.delete",
        Some(("secret", id.to_string())),
        json!({ "name": meta.name }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

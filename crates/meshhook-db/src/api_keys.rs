//! Project API keys: `mh_` + random, shown once; only the SHA-256 hash and
//! a short display prefix are stored. Management runs under the caller's
//! RLS session (admins only, by policy); [`authenticate`] runs as the
//! connection's own role because it happens before there is a caller.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub role: String,
    pub key_prefix: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, project_id, name, role, key_prefix, created_by, created_at, last_used_at, revoked_at";

/// What a new key is.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub project_id: Uuid,
    pub name: &'a str,
    pub role: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a [u8],
    pub created_by: Option<Uuid>,
}

/// Stores a new key.
pub async fn create(conn: &mut PgConnection, key: &NewKey<'_>) -> Result<ApiKey> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO meshhook.api_keys (project_id, name, role, key_prefix, key_hash, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(key.project_id)
    .bind(key.name)
    .bind(key.role)
    .bind(key.key_prefix)
    .bind(key.key_hash)
    .bind(key.created_by)
    .fetch_one(conn)
    .await?)
}

/// The project's keys, newest first (revoked ones included).
pub async fn list(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.api_keys WHERE project_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes a key of the project (idempotent). `None` when there is no
/// such key.
pub async fn revoke(conn: &mut PgConnection, project_id: Uuid, id: Uuid) -> Result<Option<ApiKey>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE meshhook.api_keys SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND project_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(project_id)
    .fetch_optional(conn)
    .await?)
}

/// A live key, found by hash.
#[derive(Debug, Clone, FromRow)]
pub struct Authenticated {
    pub id: Uuid,
    pub project_id: Uuid,
    pub role: String,
}

/// Finds the live (not revoked) key with SHA-256 `hash` and records its
/// use. `last_used_at` is written at most once a minute per key, so busy
/// automation does not turn every request into a write.
pub async fn authenticate(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<Authenticated>> {
    let found: Option<(Uuid, Uuid, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT id, project_id, role, last_used_at FROM meshhook.api_keys
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, project_id, role, last_used)) = found else {
        return Ok(None);
    };
    if last_used.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
        sqlx::query("UPDATE meshhook.api_keys SET last_used_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(Authenticated {
        id,
        project_id,
        role,
    }))
}

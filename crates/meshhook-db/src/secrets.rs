//! The secrets vault as the API manages it: create, list, replace and
//! delete, never read back. Values are sealed with [`crate::vault::seal`]
//! (envelope encryption bound to `(project_id, name)`) before they reach
//! SQL; only the masked hint is stored in the clear. Runs inside the
//! caller's RLS session: members see names, admins write (policy).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::vault::{self, Keyring};

/// What the API shows of a secret: never its value.
#[derive(Debug, Clone, FromRow)]
pub struct Meta {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// The masked form, e.g. `sk_…f3a9`.
    pub hint: String,
    pub kek_id: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, name, hint, kek_id, created_by, created_at, updated_at";

/// Whether `name` is a valid secret name (`[A-Za-z_][A-Za-z0-9_]{0,127}`).
pub fn is_valid_name(name: &str) -> bool {
    meshhook_core::template::is_secret_name(name) && name.len() <= 128
}

/// Creates secret `name`. A taken name fails with the unique violation
/// `secrets_project_name_key` (creating never overwrites).
pub async fn create(
    conn: &mut PgConnection,
    project_id: Uuid,
    name: &str,
    value: &str,
    keyring: &Keyring,
    actor: Option<Uuid>,
) -> Result<Meta, vault::Error> {
    if !is_valid_name(name) {
        return Err(vault::Error::InvalidName(name.to_owned()));
    }
    let s = vault::seal(keyring, project_id, name, value.as_bytes());
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO meshhook.secrets (project_id, name, ciphertext, nonce, wrapped_dek, dek_nonce, kek_id, hint, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    )))
    .bind(project_id)
    .bind(name)
    .bind(&s.ciphertext)
    .bind(&s.nonce)
    .bind(&s.wrapped_dek)
    .bind(&s.dek_nonce)
    .bind(&s.kek_id)
    .bind(vault::hint(value))
    .bind(actor)
    .fetch_one(conn)
    .await?)
}

/// The project's secrets by name.
pub async fn list(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<Meta>, vault::Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.secrets WHERE project_id = $1 ORDER BY name"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// One secret's metadata.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Meta>, vault::Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.secrets WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Replaces the value of secret `id` (fresh data key, current KEK).
/// `None` when there is no such secret visible for writing.
pub async fn replace(
    conn: &mut PgConnection,
    id: Uuid,
    value: &str,
    keyring: &Keyring,
) -> Result<Option<Meta>, vault::Error> {
    let row: Option<(Uuid, String)> =
        sqlx::query_as("SELECT project_id, name FROM meshhook.secrets WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((project_id, name)) = row else {
        return Ok(None);
    };
    let s = vault::seal(keyring, project_id, &name, value.as_bytes());
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE meshhook.secrets SET ciphertext = $2, nonce = $3, wrapped_dek = $4, dek_nonce = $5, kek_id = $6,
                hint = $7, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&s.ciphertext)
    .bind(&s.nonce)
    .bind(&s.wrapped_dek)
    .bind(&s.dek_nonce)
    .bind(&s.kek_id)
    .bind(vault::hint(value))
    .fetch_optional(conn)
    .await?)
}

/// Deletes secret `id`. `None` when there is no such secret visible for
/// writing.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<Option<Meta>, vault::Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM meshhook.secrets WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

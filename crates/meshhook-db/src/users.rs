//! Users and their rotating refresh tokens: the built-in auth server's
//! tables. These functions run as the connection's own role (sign-up,
//! login and refresh happen before there is a caller to restrict to).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// A user as the API shows it.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
}

/// A user with the stored password hash, for login.
#[derive(Debug, Clone, FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub email: String,
    /// argon2id PHC string; `None` for external (Supabase) users.
    pub password_hash: Option<String>,
}

/// Creates a user with a password. A taken email (compared
/// case-insensitively) fails with the unique violation `users_email_key`.
pub async fn create(conn: &mut PgConnection, email: &str, password_hash: &str) -> Result<User> {
    Ok(sqlx::query_as(
        "INSERT INTO meshhook.users (email, password_hash) VALUES ($1, $2) RETURNING id, email",
    )
    .bind(email)
    .bind(password_hash)
    .fetch_one(conn)
    .await?)
}

/// The credentials of the user with `email` (case-insensitive).
pub async fn credentials(conn: &mut PgConnection, email: &str) -> Result<Option<Credentials>> {
    Ok(sqlx::query_as(
        "SELECT id, email, password_hash FROM meshhook.users WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// The user with `id`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>> {
    Ok(
        sqlx::query_as("SELECT id, email FROM meshhook.users WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The id of the user with `email` (case-insensitive).
pub async fn id_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM meshhook.users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(conn)
            .await?,
    )
}

/// Makes sure a user who signed in elsewhere (a Supabase token: `sub` and
/// `email`) has a row here, so memberships can reference it. Returns
/// whether a row with this id exists afterwards: `false` when the email
/// already belongs to another local user.
pub async fn ensure_external(conn: &mut PgConnection, id: Uuid, email: &str) -> Result<bool> {
    let exists: bool = sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO meshhook.users (id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id
         )
         SELECT EXISTS (SELECT 1 FROM ins) OR EXISTS (SELECT 1 FROM meshhook.users WHERE id = $1)",
    )
    .bind(id)
    .bind(email)
    .fetch_one(conn)
    .await?;
    Ok(exists)
}

/// A stored refresh token.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a refresh token by its SHA-256 `hash`.
pub async fn insert_refresh_token(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Uuid> {
    Ok(sqlx::query_scalar(
        "INSERT INTO meshhook.refresh_tokens (user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(family_id)
    .bind(hash)
    .bind(expires_at)
    .fetch_one(conn)
    .await?)
}

/// Finds and locks the refresh token with SHA-256 `hash`, so concurrent
/// refreshes with one token are serialised (the second sees it revoked).
pub async fn lock_refresh_token(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<RefreshToken>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, family_id, expires_at, revoked_at FROM meshhook.refresh_tokens
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?)
}

/// Revokes one refresh token.
pub async fn revoke_refresh_token(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE meshhook.refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every token of a family (reuse of a revoked token, or logout).
/// Returns how many were still live.
pub async fn revoke_refresh_family(conn: &mut PgConnection, family_id: Uuid) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE meshhook.refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Deletes refresh tokens that expired more than a day ago.
pub async fn prune_refresh_tokens(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM meshhook.refresh_tokens WHERE expires_at < now() - interval '1 day'",
    )
    .execute(conn)
    .await?
    .rows_affected())
}

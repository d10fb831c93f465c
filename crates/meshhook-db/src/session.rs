//! Request sessions: a transaction that runs as the API's caller, so the
//! row-level-security policies of migration 0005 decide what it sees.
//!
//! [`begin_as`] opens a transaction, stores the caller's claims in
//! `request.jwt.claims` (what `auth.uid()` and `meshhook.my_projects()`
//! read) and switches to the `authenticated` role, both transaction-local
//! (`set_config(..., true)`), so nothing leaks to the pooled connection's
//! next user even if the transaction is never committed.
//!
//! Some engine calls touch tables `authenticated` has no rights on (the
//! queue). The API authorises such a call under RLS first, then
//! [`elevate`]s for the call itself, inside the same transaction, and may
//! [`restrict`] again afterwards.

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::Result;

/// Per-statement limit inside request transactions: a runaway query must
/// not pin a pooled connection.
pub const STATEMENT_TIMEOUT: &str = "30s";

/// Begins a transaction running as `authenticated` with `claims`.
pub async fn begin_as(pool: &PgPool, claims: &Value) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true),
                set_config('statement_timeout', $2, true)",
    )
    .bind(claims.to_string())
    .bind(STATEMENT_TIMEOUT)
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// Leaves the `authenticated` role for the rest of the transaction (or
/// until [`restrict`]): the connection's own role, which RLS does not
/// restrict. Call only after the caller was authorised for what follows.
pub async fn elevate(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL ROLE NONE").execute(conn).await?;
    Ok(())
}

/// Back to `authenticated` after [`elevate`].
pub async fn restrict(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL ROLE authenticated")
        .execute(conn)
        .await?;
    Ok(())
}

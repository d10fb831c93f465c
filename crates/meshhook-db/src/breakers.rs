//! Per-target-host circuit breakers, shared by every executor through
//! `meshhook.circuit_breakers` (the core crate's [`Breaker`] as JSON).
//!
//! A caller locks the row ([`lock_or_default`]), consults or updates the
//! breaker, and [`save`]s it in the same transaction, so concurrent workers
//! see each other's admissions and outcomes.

use meshhook_core::breaker::{Breaker, Policy};
use sqlx::PgConnection;

use crate::{Error, Result};

async fn select_for_update(
    conn: &mut PgConnection,
    host: &str,
) -> Result<Option<serde_json::Value>> {
    Ok(
        sqlx::query_scalar(
            "SELECT state FROM meshhook.circuit_breakers WHERE host = $1 FOR UPDATE",
        )
        .bind(host)
        .fetch_optional(conn)
        .await?,
    )
}

/// Locks `host`'s breaker for the rest of the transaction, creating a
/// closed one if there is none. The configured `policy` replaces the stored
/// one, so tuning changes apply at once.
pub async fn lock_or_default(
    conn: &mut PgConnection,
    host: &str,
    policy: Policy,
) -> Result<Breaker> {
    let state = match select_for_update(conn, host).await? {
        Some(state) => state,
        None => {
            let fresh = serde_json::to_value(Breaker::new(policy))
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO meshhook.circuit_breakers (host, state) VALUES ($1, $2) ON CONFLICT (host) DO NOTHING")
                .bind(host)
                .bind(&fresh)
                .execute(&mut *conn)
                .await?;
            select_for_update(conn, host)
                .await?
                .ok_or_else(|| Error::Corrupt(format!("circuit breaker row for {host} vanished")))?
        }
    };
    let mut breaker: Breaker = serde_json::from_value(state)
        .map_err(|e| Error::Corrupt(format!("circuit breaker of {host}: {e}")))?;
    breaker.policy = policy;
    Ok(breaker)
}

/// Stores `host`'s breaker.
pub async fn save(conn: &mut PgConnection, host: &str, breaker: &Breaker) -> Result<()> {
    let state = serde_json::to_value(breaker).map_err(|e| Error::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO meshhook.circuit_breakers (host, state, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (host) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
    )
    .bind(host)
    .bind(&state)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads `host`'s breaker without locking (for views and tests).
pub async fn get(conn: &mut PgConnection, host: &str) -> Result<Option<Breaker>> {
    let state: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT state FROM meshhook.circuit_breakers WHERE host = $1")
            .bind(host)
            .fetch_optional(conn)
            .await?;
    state
        .map(|s| {
            serde_json::from_value(s)
                .map_err(|e| Error::Corrupt(format!("circuit breaker of {host}: {e}")))
        })
        .transpose()
}

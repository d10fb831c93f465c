//! The audit log: who did what, when, from where. Append-only (a trigger
//! refuses updates). The API writes one row per administrative action in
//! the same transaction as the action, so an action and its record commit
//! together or not at all; admins read it back under RLS.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// One row to append.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub project_id: Option<Uuid>,
    /// User id or API key id.
    pub actor_id: Option<Uuid>,
    /// `user`, `api_key`, `system` or `worker`.
    pub actor_kind: &'a str,
    /// E.g. `secret.create`, `workflow.publish`, `member.add`.
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    /// Never a secret value.
    pub details: Value,
    /// The client's address.
    pub ip: Option<String>,
    pub user_agent: Option<&'a str>,
}

/// Appends `entry`.
pub async fn record(conn: &mut PgConnection, entry: &Entry<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO meshhook.audit_log (project_id, actor_id, actor_kind, action, target_type, target_id, details, ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::inet, $9)",
    )
    .bind(entry.project_id)
    .bind(entry.actor_id)
    .bind(entry.actor_kind)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(&entry.details)
    .bind(&entry.ip)
    .bind(entry.user_agent)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored row.
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: i64,
    pub project_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_kind: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
}

/// The project's rows, newest first, `limit` of them with `id < before`
/// (keyset pagination: ids only grow, so pages are stable under inserts).
pub async fn list(
    conn: &mut PgConnection,
    project_id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>> {
    Ok(sqlx::query_as(
        "SELECT id, project_id, actor_id, actor_kind, action, target_type, target_id, details,
                host(ip) AS ip, user_agent, at
         FROM meshhook.audit_log
         WHERE project_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(project_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

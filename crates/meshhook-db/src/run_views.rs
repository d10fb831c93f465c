//! Read models of runs for the API: the filtered, keyset-paginated run
//! list, a run's full row, and its event log as stored. Runs inside the
//! caller's RLS session; the engine's own persistence is [`crate::runs`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// A run in a list.
#[derive(Debug, Clone, FromRow)]
pub struct Summary {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub version: Option<i32>,
    pub status: String,
    pub trigger_kind: String,
    pub parent_run_id: Option<Uuid>,
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filters of the run list; `after` is the keyset position (the last
/// item of the previous page).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub workflow_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Runs of a project, newest first, ordered by `(created_at, id)` so that
/// a page boundary is a fixed point: rows inserted meanwhile land before
/// the first page or in their place further on, never twice.
pub async fn list(conn: &mut PgConnection, project_id: Uuid, f: &Filter) -> Result<Vec<Summary>> {
    let (after_at, after_id) = f.after.unzip();
    Ok(sqlx::query_as(
        "SELECT id, project_id, workflow_id, version, status, trigger_kind, parent_run_id, error,
                created_at, started_at, finished_at
         FROM meshhook.runs
         WHERE project_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR workflow_id = $3)
           AND ($4::timestamptz IS NULL OR created_at >= $4)
           AND ($5::timestamptz IS NULL OR created_at < $5)
           AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
         ORDER BY created_at DESC, id DESC
         LIMIT $8",
    )
    .bind(project_id)
    .bind(&f.status)
    .bind(f.workflow_id)
    .bind(f.created_after)
    .bind(f.created_before)
    .bind(after_at)
    .bind(after_id)
    .bind(f.limit)
    .fetch_all(conn)
    .await?)
}

/// A run's row, for its detail page.
#[derive(Debug, Clone, FromRow)]
pub struct Detail {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version_id: Option<Uuid>,
    pub version: Option<i32>,
    pub status: String,
    pub trigger_kind: String,
    pub trigger: Value,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub parent_run_id: Option<Uuid>,
    pub resumed_from_node: Option<String>,
    pub last_seq: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One run.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Detail>> {
    Ok(sqlx::query_as(
        "SELECT id, project_id, workflow_id, workflow_version_id, version, status, trigger_kind, trigger, output,
                error, parent_run_id, resumed_from_node, last_seq, created_at, started_at, finished_at
         FROM meshhook.runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The project a run belongs to, if the caller can see it.
pub async fn project_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT project_id FROM meshhook.runs WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// An event as stored.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub seq: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub data: Value,
    pub at: DateTime<Utc>,
}

/// The seq of `run_id`'s last event recorded before `before` (0 if none).
pub async fn last_seq_before(
    conn: &mut PgConnection,
    run_id: Uuid,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(seq), 0)::bigint FROM meshhook.events WHERE run_id = $1 AND at < $2",
    )
    .bind(run_id)
    .bind(before)
    .fetch_one(conn)
    .await?)
}

/// The run's events with `seq > after`, in order, at most `limit`.
pub async fn events(
    conn: &mut PgConnection,
    run_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    Ok(sqlx::query_as(
        "SELECT seq, type, data, at FROM meshhook.events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(run_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

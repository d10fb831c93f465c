//! Metrics queries: the cheap gauges every role exposes at `/metrics`, the
//! refresh of the materialized views of migration 0013, and the
//! per-project reads behind `GET /api/v1/projects/{pid}/metrics`.
//!
//! The views have no row-level security (PostgreSQL cannot put it on a
//! materialized view) and are granted to nobody: every read here takes the
//! project id and filters on it, and callers check membership first.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

use crate::Result;

/// The refresh of each metrics view, in order (constant statements).
const REFRESHES: &[&str] = &[
    "REFRESH MATERIALIZED VIEW CONCURRENTLY meshhook.metrics_runs_hourly",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY meshhook.metrics_step_latency",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY meshhook.metrics_failure_hotspots",
];

/// The windows the step-latency and failure views are computed over.
pub const SPANS: &[&str] = &["1h", "24h", "7d"];

/// Advisory-lock key of the refresh ("meshmetr"): one refresher at a time.
const REFRESH_LOCK: i64 = 0x6d65_7368_6d65_7472;

/// Unfinished runs by status (`queued`, `running`, `waiting`), counted
/// over the partial index `runs_active_idx`; statuses with no run are
/// absent.
pub async fn unfinished_runs<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT status, count(*) FROM meshhook.runs
         WHERE status IN ('queued', 'running', 'waiting') GROUP BY status ORDER BY status",
    )
    .fetch_all(ex)
    .await?)
}

/// Refreshes every metrics view (`CONCURRENTLY`: readers are not blocked),
/// all in one transaction.
/// Returns false, doing nothing, when another process is refreshing.
pub async fn refresh_views(pool: &PgPool) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(REFRESH_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(false);
    }
    // One transaction: readers see the views of one refresh together
    // (never run counts that include a run whose step latency is missing).
    let refresh = async {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for &sql in REFRESHES {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    };
    let result = refresh.await.map(|()| true).map_err(Into::into);
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(REFRESH_LOCK)
        .execute(&mut *conn)
        .await?;
    result
}

/// Finished runs of one workflow in one hour.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct RunBucket {
    pub workflow_id: Uuid,
    pub bucket: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// The project's hourly buckets since `since` (oldest first).
pub async fn run_buckets<'e>(
    ex: impl PgExecutor<'e>,
    project_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<RunBucket>> {
    Ok(sqlx::query_as(
        "SELECT workflow_id, bucket, succeeded, failed, cancelled
         FROM meshhook.metrics_runs_hourly
         WHERE project_id = $1 AND bucket >= date_trunc('hour', $2::timestamptz)
         ORDER BY bucket, workflow_id",
    )
    .bind(project_id)
    .bind(since)
    .fetch_all(ex)
    .await?)
}

/// Step latency of one workflow's node over a window.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct StepLatency {
    pub workflow_id: Uuid,
    pub node_id: String,
    pub steps: i64,
    pub failed: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// The project's step latencies over `span` (one of [`SPANS`]), slowest
/// p95 first.
pub async fn step_latency<'e>(
    ex: impl PgExecutor<'e>,
    project_id: Uuid,
    span: &str,
) -> Result<Vec<StepLatency>> {
    Ok(sqlx::query_as(
        "SELECT workflow_id, node_id, steps, failed, p50_ms, p95_ms, max_ms
         FROM meshhook.metrics_step_latency
         WHERE project_id = $1 AND span = $2
         ORDER BY p95_ms DESC, workflow_id, node_id",
    )
    .bind(project_id)
    .bind(span)
    .fetch_all(ex)
    .await?)
}

/// Failed runs of one workflow attributed to one node over a window.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Hotspot {
    pub workflow_id: Uuid,
    /// Empty when no node failed the run (a timeout, a cancelled start).
    pub node_id: String,
    pub failures: i64,
    pub last_failed_at: DateTime<Utc>,
}

/// The project's failure hotspots over `span`, most failures first.
pub async fn hotspots<'e>(
    ex: impl PgExecutor<'e>,
    project_id: Uuid,
    span: &str,
) -> Result<Vec<Hotspot>> {
    Ok(sqlx::query_as(
        "SELECT workflow_id, node_id, failures, last_failed_at
         FROM meshhook.metrics_failure_hotspots
         WHERE project_id = $1 AND span = $2
         ORDER BY failures DESC, workflow_id, node_id",
    )
    .bind(project_id)
    .bind(span)
    .fetch_all(ex)
    .await?)
}

/// The project's unfinished runs now: by status, and the age of the
/// oldest queued one (its queue lag).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub by_status: Vec<(String, i64)>,
    pub oldest_queued_s: Option<f64>,
}

/// [`Current`] for one project (live, not from the views).
pub async fn current(conn: &mut sqlx::PgConnection, project_id: Uuid) -> Result<Current> {
    let by_status = sqlx::query_as(
        "SELECT status, count(*) FROM meshhook.runs
         WHERE project_id = $1 AND status IN ('queued', 'running', 'waiting')
         GROUP BY status ORDER BY status",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await?;
    let oldest_queued_s = sqlx::query_scalar(
        "SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8
         FROM meshhook.runs WHERE project_id = $1 AND status = 'queued'",
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Current {
        by_status,
        oldest_queued_s,
    })
}

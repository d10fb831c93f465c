//! Webhooks and their delivery log.
//!
//! Management calls run in the caller's RLS session (the API's `Session`);
//! [`by_token`] and [`insert_deliveries`] are the ingress's: the token is
//! the credential, so they run on the service connection. Signing keys are
//! stored sealed by the vault (`signing_keys` holds their ciphertexts,
//! never a plaintext); this module does not interpret them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// A webhook row.
#[derive(Debug, Clone, FromRow)]
pub struct Webhook {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub token: String,
    pub verification: Value,
    /// Sealed signing keys (see the API's `hooks::keys`); never plaintext.
    pub signing_keys: Value,
    pub mode: Value,
    pub rate_limit: Option<Value>,
    pub payload_schema: Option<Value>,
    pub max_body_bytes: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, project_id, workflow_id, token, verification, signing_keys, mode, rate_limit,
    payload_schema, max_body_bytes, enabled, created_at, updated_at";

/// The fields a caller sets.
#[derive(Debug, Clone)]
pub struct Fields {
    pub verification: Value,
    pub signing_keys: Value,
    pub mode: Value,
    pub rate_limit: Option<Value>,
    pub payload_schema: Option<Value>,
    pub max_body_bytes: i32,
    pub enabled: bool,
}

/// Inserts a webhook of `workflow_id` (whose project is `project_id`).
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    project_id: Uuid,
    workflow_id: Uuid,
    token: &str,
    f: &Fields,
) -> Result<Webhook> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO meshhook.webhooks (id, project_id, workflow_id, token, verification, signing_keys, mode,
                                        rate_limit, payload_schema, max_body_bytes, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(project_id)
    .bind(workflow_id)
    .bind(token)
    .bind(&f.verification)
    .bind(&f.signing_keys)
    .bind(&f.mode)
    .bind(&f.rate_limit)
    .bind(&f.payload_schema)
    .bind(f.max_body_bytes)
    .bind(f.enabled)
    .fetch_one(conn)
    .await?)
}

/// The webhooks of a workflow, oldest first.
pub async fn list(conn: &mut PgConnection, workflow_id: Uuid) -> Result<Vec<Webhook>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.webhooks WHERE workflow_id = $1 ORDER BY created_at, id"
    )))
    .bind(workflow_id)
    .fetch_all(conn)
    .await?)
}

/// One webhook by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Webhook>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.webhooks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// One webhook by its URL token: the ingress's lookup (service role).
pub async fn by_token(conn: &mut PgConnection, token: &str) -> Result<Option<Webhook>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM meshhook.webhooks WHERE token = $1"
    )))
    .bind(token)
    .fetch_optional(conn)
    .await?)
}

/// Replaces the settable fields.
pub async fn update(conn: &mut PgConnection, id: Uuid, f: &Fields) -> Result<Option<Webhook>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE meshhook.webhooks SET verification = $2, signing_keys = $3, mode = $4, rate_limit = $5,
                payload_schema = $6, max_body_bytes = $7, enabled = $8, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&f.verification)
    .bind(&f.signing_keys)
    .bind(&f.mode)
    .bind(&f.rate_limit)
    .bind(&f.payload_schema)
    .bind(f.max_body_bytes)
    .bind(f.enabled)
    .fetch_optional(conn)
    .await?)
}

/// Deletes a webhook; its token stops working at once.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    let done = sqlx::query("DELETE FROM meshhook.webhooks WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One delivery-log row to write.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub verdict: &'static str,
    pub status_code: i32,
    pub run_id: Option<Uuid>,
    pub dedupe_key: Option<String>,
    pub detail: Option<String>,
    pub latency_ms: f64,
    pub remote_addr: Option<String>,
}

/// Appends delivery-log rows with one statement.
pub async fn insert_deliveries(conn: &mut PgConnection, rows: &[NewDelivery]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let hooks: Vec<Uuid> = rows.iter().map(|r| r.webhook_id).collect();
    let projects: Vec<Uuid> = rows.iter().map(|r| r.project_id).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let verdicts: Vec<&str> = rows.iter().map(|r| r.verdict).collect();
    let statuses: Vec<i32> = rows.iter().map(|r| r.status_code).collect();
    let runs: Vec<Option<Uuid>> = rows.iter().map(|r| r.run_id).collect();
    let keys: Vec<Option<&str>> = rows.iter().map(|r| r.dedupe_key.as_deref()).collect();
    let details: Vec<Option<&str>> = rows.iter().map(|r| r.detail.as_deref()).collect();
    let latencies: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
    let addrs: Vec<Option<&str>> = rows.iter().map(|r| r.remote_addr.as_deref()).collect();
    // The webhook may have been deleted meanwhile: its rows are dropped
    // (the JOIN) rather than failing the whole batch. The webhooks are
    // locked FOR KEY SHARE, so a delete that comes later waits for this
    // transaction and then removes these rows too (migration 0011: no
    // per-row foreign key).
    sqlx::query(
        "INSERT INTO meshhook.webhook_deliveries (webhook_id, project_id, received_at, verdict, status_code,
                                                  run_id, dedupe_key, detail, latency_ms, remote_addr)
         SELECT u.w, u.p, u.a, u.v, u.s, u.r, u.k, u.d, u.l, u.ip::inet
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::int4[], $6::uuid[],
                     $7::text[], $8::text[], $9::float8[], $10::text[]) AS u(w, p, a, v, s, r, k, d, l, ip)
         JOIN (SELECT id FROM meshhook.webhooks WHERE id = ANY($1) FOR KEY SHARE) h ON h.id = u.w",
    )
    .bind(&hooks)
    .bind(&projects)
    .bind(&at)
    .bind(&verdicts)
    .bind(&statuses)
    .bind(&runs)
    .bind(&keys)
    .bind(&details)
    .bind(&latencies)
    .bind(&addrs)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery-log row.
#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub verdict: String,
    pub status_code: i32,
    pub run_id: Option<Uuid>,
    pub dedupe_key: Option<String>,
    pub detail: Option<String>,
    pub latency_ms: Option<f64>,
    pub remote_addr: Option<String>,
}

/// A webhook's deliveries, newest first, after the keyset cursor
/// `(received_at, id)` when given.
pub async fn deliveries(
    conn: &mut PgConnection,
    webhook_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let (at, id) = before.unzip();
    Ok(sqlx::query_as(
        "SELECT id, received_at, verdict, status_code, run_id, dedupe_key, detail, latency_ms,
                host(remote_addr) AS remote_addr
         FROM meshhook.webhook_deliveries
         WHERE webhook_id = $1 AND ($2::timestamptz IS NULL OR (received_at, id) < ($2, $3))
         ORDER BY received_at DESC, id DESC
         LIMIT $4",
    )
    .bind(webhook_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A run's status, output and error, for synchronous webhooks.
pub async fn run_outcome(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<Option<(String, Option<Value>, Option<Value>)>> {
    Ok(
        sqlx::query_as("SELECT status, output, error FROM meshhook.runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(conn)
            .await?,
    )
}

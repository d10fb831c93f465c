//! Alert rules and their deliveries (migration 0015).
//!
//! The API manages rules under RLS ([`create`], [`list`], [`get`],
//! [`update`], [`delete`], [`enqueue`], [`deliveries`]); the HTTP executor
//! evaluates them ([`evaluate`]) and delivers what is due ([`claim_due`],
//! [`record`]) with the service role.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;
use crate::vault::Sealed;

/// The three kinds of rule.
pub const KINDS: &[&str] = &["run_failed", "failure_rate", "queue_lag"];

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 6;

/// A rule as the API shows it (never its secret).
#[derive(Debug, Clone, FromRow)]
pub struct Rule {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub kind: String,
    pub workflow_id: Option<Uuid>,
    pub threshold: Option<f64>,
    pub window_secs: i32,
    pub min_runs: i32,
    pub cooldown_secs: i32,
    pub url: String,
    pub enabled: bool,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "id, project_id, name, kind, workflow_id, threshold, window_secs, min_runs, cooldown_secs, url, enabled, last_fired_at, created_at, updated_at";

/// The settable fields of a rule.
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub kind: String,
    pub workflow_id: Option<Uuid>,
    pub threshold: Option<f64>,
    pub window_secs: i32,
    pub min_runs: i32,
    pub cooldown_secs: i32,
    pub url: String,
    pub enabled: bool,
}

/// The vault name a rule's secret is sealed under (binds it to the rule).
pub fn secret_name(rule_id: Uuid) -> String {
    format!("alert-rule:{rule_id}")
}

/// Creates a rule with its sealed signing secret.
pub async fn create(
    conn: &mut PgConnection,
    id: Uuid,
    project_id: Uuid,
    f: &Fields,
    secret: &Sealed,
) -> Result<Rule> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO meshhook.alert_rules (id, project_id, name, kind, workflow_id, threshold, window_secs, min_runs,
                                           cooldown_secs, url, enabled, ciphertext, nonce, wrapped_dek, dek_nonce, kek_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         RETURNING {RULE_COLUMNS}"
    )))
    .bind(id)
    .bind(project_id)
    .bind(&f.name)
    .bind(&f.kind)
    .bind(f.workflow_id)
    .bind(f.threshold)
    .bind(f.window_secs)
    .bind(f.min_runs)
    .bind(f.cooldown_secs)
    .bind(&f.url)
    .bind(f.enabled)
    .bind(&secret.ciphertext)
    .bind(&secret.nonce)
    .bind(&secret.wrapped_dek)
    .bind(&secret.dek_nonce)
    .bind(&secret.kek_id)
    .fetch_one(conn)
    .await?)
}

/// A project's rules, oldest first.
pub async fn list(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM meshhook.alert_rules WHERE project_id = $1 ORDER BY created_at, id"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// One rule, if visible.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM meshhook.alert_rules WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Replaces a rule's settable fields; `None` when no row was visible.
pub async fn update(conn: &mut PgConnection, id: Uuid, f: &Fields) -> Result<Option<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE meshhook.alert_rules SET name = $2, kind = $3, workflow_id = $4, threshold = $5, window_secs = $6,
                min_runs = $7, cooldown_secs = $8, url = $9, enabled = $10, updated_at = now()
         WHERE id = $1 RETURNING {RULE_COLUMNS}"
    )))
    .bind(id)
    .bind(&f.name)
    .bind(&f.kind)
    .bind(f.workflow_id)
    .bind(f.threshold)
    .bind(f.window_secs)
    .bind(f.min_runs)
    .bind(f.cooldown_secs)
    .bind(&f.url)
    .bind(f.enabled)
    .fetch_optional(conn)
    .await?)
}

/// Deletes a rule (and its delivery log); `false` when none was visible.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM meshhook.alert_rules WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Queues one alert of `kind` for the rule (the API's test sends).
pub async fn enqueue(
    conn: &mut PgConnection,
    rule: &Rule,
    kind: &str,
    payload: &Value,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO meshhook.alert_deliveries (id, rule_id, project_id, type, payload) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(rule.id)
    .bind(rule.project_id)
    .bind(kind)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(id)
}

/// One delivery in a rule's log.
#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub payload: Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A rule's deliveries, newest first.
pub async fn deliveries(
    conn: &mut PgConnection,
    rule_id: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "SELECT id, type, payload, status, attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at
         FROM meshhook.alert_deliveries WHERE rule_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(rule_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Evaluates every enabled rule once and queues the alerts that fire.
/// Returns how many were queued. Safe with several evaluators at once
/// (rules are locked `SKIP LOCKED`; a failed run alerts once per rule).
pub async fn evaluate(pool: &PgPool) -> Result<u64> {
    // Failed runs: each one once. Only runs that finished a few seconds
    // ago are looked at, so a run whose transaction commits late is not
    // skipped by the moving mark.
    let failed: i64 = sqlx::query_scalar(
        "WITH r AS MATERIALIZED (
             SELECT id, project_id, name, workflow_id, checked_until FROM meshhook.alert_rules
             WHERE enabled AND kind = 'run_failed' FOR UPDATE SKIP LOCKED
         ), f AS MATERIALIZED (
             SELECT r.id AS rule_id, r.project_id, r.name, x.id AS run_id, x.workflow_id, x.finished_at, x.error
             FROM r CROSS JOIN LATERAL (
                 SELECT run.id, run.workflow_id, run.finished_at, run.error FROM meshhook.runs run
                 WHERE run.project_id = r.project_id AND run.status = 'failed'
                   AND run.finished_at > r.checked_until AND run.finished_at <= now() - interval '5 seconds'
                   AND (r.workflow_id IS NULL OR run.workflow_id = r.workflow_id)
                 ORDER BY run.finished_at LIMIT 100) x
         ), ins AS (
             INSERT INTO meshhook.alert_deliveries (id, rule_id, project_id, type, payload)
             SELECT gen_random_uuid(), rule_id, project_id, 'alert.run_failed',
                    jsonb_build_object('type', 'alert.run_failed', 'rule_id', rule_id, 'rule_name', name,
                                       'project_id', project_id, 'run_id', run_id, 'workflow_id', workflow_id,
                                       'finished_at', finished_at, 'error', error)
             FROM f
             ON CONFLICT DO NOTHING
             RETURNING 1
         ), moved AS (
             UPDATE meshhook.alert_rules a
             SET checked_until = CASE WHEN (SELECT count(*) FROM f WHERE f.rule_id = a.id) >= 100
                                      THEN (SELECT max(finished_at) FROM f WHERE f.rule_id = a.id)
                                      ELSE greatest(a.checked_until, now() - interval '5 seconds') END,
                 last_fired_at = CASE WHEN EXISTS (SELECT 1 FROM f WHERE f.rule_id = a.id) THEN now()
                                      ELSE a.last_fired_at END
             FROM r WHERE a.id = r.id
         )
         SELECT count(*) FROM ins",
    )
    .fetch_one(pool)
    .await?;

    // Failure rate over the window, at most once per cooldown.
    let rate: i64 = sqlx::query_scalar(
        "WITH r AS MATERIALIZED (
             SELECT * FROM meshhook.alert_rules
             WHERE enabled AND kind = 'failure_rate'
               AND (last_fired_at IS NULL OR last_fired_at < now() - make_interval(secs => cooldown_secs))
             FOR UPDATE SKIP LOCKED
         ), s AS (
             SELECT r.id, r.project_id, r.name, r.workflow_id, r.window_secs, r.min_runs,
                    coalesce(r.threshold, 0.5) AS threshold,
                    count(x.id) FILTER (WHERE x.status = 'failed') AS failed, count(x.id) AS finished
             FROM r LEFT JOIN meshhook.runs x
               ON x.project_id = r.project_id AND x.finished_at > now() - make_interval(secs => r.window_secs)
              AND x.status IN ('succeeded', 'failed', 'cancelled')
              AND (r.workflow_id IS NULL OR x.workflow_id = r.workflow_id)
             GROUP BY r.id, r.project_id, r.name, r.workflow_id, r.window_secs, r.min_runs, r.threshold
         ), hit AS MATERIALIZED (
             SELECT * FROM s WHERE finished >= min_runs AND failed::float8 / finished >= threshold
         ), ins AS (
             INSERT INTO meshhook.alert_deliveries (id, rule_id, project_id, type, payload)
             SELECT gen_random_uuid(), id, project_id, 'alert.failure_rate',
                    jsonb_build_object('type', 'alert.failure_rate', 'rule_id', id, 'rule_name', name,
                                       'project_id', project_id, 'workflow_id', workflow_id,
                                       'window_secs', window_secs, 'failed', failed, 'finished', finished,
                                       'failure_rate', round((failed::numeric / finished), 4), 'threshold', threshold)
             FROM hit
             RETURNING 1
         ), fired AS (
             UPDATE meshhook.alert_rules a SET last_fired_at = now() WHERE a.id IN (SELECT id FROM hit)
         )
         SELECT count(*) FROM ins",
    )
    .fetch_one(pool)
    .await?;

    // Queue lag: the oldest visible message of any queue, at most once
    // per cooldown.
    let lag: i64 = sqlx::query_scalar(
        "WITH r AS MATERIALIZED (
             SELECT * FROM meshhook.alert_rules
             WHERE enabled AND kind = 'queue_lag'
               AND (last_fired_at IS NULL OR last_fired_at < now() - make_interval(secs => cooldown_secs))
             FOR UPDATE SKIP LOCKED
         ), q AS MATERIALIZED (
             SELECT name AS queue,
                    extract(epoch FROM now() - (SELECT min(vt) FROM meshhook.queue_messages m
                                                 WHERE m.queue = qs.name AND m.vt <= now()))::float8 AS age
             FROM meshhook.queues qs
         ), worst AS MATERIALIZED (
             SELECT queue, age FROM q WHERE age IS NOT NULL ORDER BY age DESC LIMIT 1
         ), hit AS MATERIALIZED (
             SELECT r.*, worst.queue, worst.age FROM r CROSS JOIN worst
             WHERE worst.age >= coalesce(r.threshold, 60)
         ), ins AS (
             INSERT INTO meshhook.alert_deliveries (id, rule_id, project_id, type, payload)
             SELECT gen_random_uuid(), id, project_id, 'alert.queue_lag',
                    jsonb_build_object('type', 'alert.queue_lag', 'rule_id', id, 'rule_name', name,
                                       'project_id', project_id, 'queue', queue,
                                       'lag_secs', round(age::numeric, 1), 'threshold_secs', coalesce(threshold, 60))
             FROM hit
             RETURNING 1
         ), fired AS (
             UPDATE meshhook.alert_rules a SET last_fired_at = now() WHERE a.id IN (SELECT id FROM hit)
         )
         SELECT count(*) FROM ins",
    )
    .fetch_one(pool)
    .await?;
    Ok([failed, rate, lag]
        .iter()
        .map(|n| u64::try_from(*n).unwrap_or(0))
        .sum())
}

/// A delivery to attempt now, with what is needed to sign and send it.
#[derive(Debug, Clone, FromRow)]
pub struct Due {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub project_id: Uuid,
    pub payload: Value,
    /// Attempts including this one.
    pub attempts: i32,
    pub url: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub wrapped_dek: Vec<u8>,
    pub dek_nonce: Vec<u8>,
    pub kek_id: String,
}

impl Due {
    /// The sealed signing secret.
    pub fn sealed(&self) -> Sealed {
        Sealed {
            ciphertext: self.ciphertext.clone(),
            nonce: self.nonce.clone(),
            wrapped_dek: self.wrapped_dek.clone(),
            dek_nonce: self.dek_nonce.clone(),
            kek_id: self.kek_id.clone(),
        }
    }
}

/// Claims up to `limit` due deliveries for `lease_secs` (another worker
/// retries them after that if this one dies), counting the attempt.
pub async fn claim_due(pool: &PgPool, limit: i64, lease_secs: f64) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(
        "UPDATE meshhook.alert_deliveries d
         SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
         FROM meshhook.alert_rules r
         WHERE r.id = d.rule_id AND d.id IN (
             SELECT id FROM meshhook.alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING d.id, d.rule_id, d.project_id, d.payload, d.attempts, r.url,
                   r.ciphertext, r.nonce, r.wrapped_dek, r.dek_nonce, r.kek_id",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(pool)
    .await?)
}

/// Records an attempt: delivered, or retried after `retry_in_secs`, or
/// failed for good (`retry_in_secs` = None).
pub async fn record(
    pool: &PgPool,
    id: Uuid,
    delivered: bool,
    status_code: Option<i32>,
    error: Option<&str>,
    retry_in_secs: Option<f64>,
) -> Result<()> {
    sqlx::query(
        "UPDATE meshhook.alert_deliveries
         SET status = CASE WHEN $2 THEN 'delivered' WHEN $5::float8 IS NULL THEN 'failed' ELSE 'pending' END,
             delivered_at = CASE WHEN $2 THEN now() END,
             last_status_code = $3, last_error = $4,
             next_attempt_at = CASE WHEN $5::float8 IS NULL THEN next_attempt_at
                                    ELSE now() + make_interval(secs => $5) END
         WHERE id = $1",
    )
    .bind(id)
    .bind(delivered)
    .bind(status_code)
    .bind(error)
    .bind(retry_in_secs)
    .execute(pool)
    .await?;
    Ok(())
}

//! Webhook deliveries stored as runs, a whole batch in ONE statement.
//!
//! The group committer of the API (`meshhook_api::hooks::batch`) hands a
//! batch of accepted deliveries to [`start_webhook_runs`]. One
//! autocommitted statement — one round trip, one commit — then:
//!
//! - silences the notification triggers for its own transaction (the
//!   caller sends them after the commit, [`crate::notify`]);
//! - locks each distinct workflow `FOR KEY SHARE` (instead of per-row
//!   foreign keys, migration 0011) and finds its latest published version;
//! - inserts the runs with `ON CONFLICT DO NOTHING` on the dedupe index
//!   `(webhook_id, idempotency_key)` — a concurrent duplicate waits for the
//!   first transaction, then skips;
//! - appends each inserted run's `run_created` event, built in SQL from
//!   the run row (the trigger payload crosses the wire and is parsed once);
//! - enqueues each inserted run's orchestrator wake-up;
//! - locks the webhooks `FOR KEY SHARE` and appends the delivery-log rows:
//!   the refusals logged with this batch, and the acceptances whose run
//!   was inserted.
//!
//! A statement is atomic, so a delivery's run, event, wake-up and
//! delivery-log row are committed together or not at all. Deliveries that
//! lost to an existing key are resolved by [`resolve_duplicates`], which
//! finds the earlier run and logs the duplicate.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;
use crate::notify::Pending;
use crate::runs::ORCHESTRATOR_QUEUE;
use crate::webhooks::NewDelivery;

/// One delivery whose run to start.
#[derive(Debug)]
pub struct NewWebhookRun<'a> {
    /// The run id to use (a UUIDv7 made by the caller).
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub webhook_id: Uuid,
    /// `{body, headers, query}` of the request.
    pub trigger: &'a Value,
    /// The dedupe key, if the request carried one.
    pub key: Option<&'a str>,
    /// Its delivery-log row (async mode), written with the run; `run_id`
    /// is filled in here.
    pub delivery: Option<&'a NewDelivery>,
}

/// What became of one [`NewWebhookRun`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run was inserted with this workflow version.
    Started { version: i32 },
    /// Its key already has a run: resolve with [`resolve_duplicates`].
    Duplicate,
    /// The workflow has no published version (or no longer exists).
    NotPublished,
}

/// Inserts the batch (see the module docs). `logs` are delivery-log rows
/// of refused deliveries, written in the same statement. Returns one
/// outcome per run, in order, and the notifications to send after the
/// commit.
pub async fn start_webhook_runs(
    pool: &PgPool,
    runs: &[NewWebhookRun<'_>],
    logs: &[NewDelivery],
    at: DateTime<Utc>,
) -> Result<(Vec<Outcome>, Pending)> {
    let n = runs.len();
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let projects: Vec<Uuid> = runs.iter().map(|r| r.project_id).collect();
    let workflows: Vec<Uuid> = runs.iter().map(|r| r.workflow_id).collect();
    let webhooks: Vec<Uuid> = runs.iter().map(|r| r.webhook_id).collect();
    let triggers: Vec<&Value> = runs.iter().map(|r| r.trigger).collect();
    let keys: Vec<Option<&str>> = runs.iter().map(|r| r.key).collect();

    // Delivery-log rows: refusals (no run to wait for) and acceptances
    // (written only if their run is inserted).
    let mut d = DeliveryColumns::with_capacity(logs.len() + n);
    for row in logs {
        d.push(row, row.run_id, false);
    }
    for r in runs {
        if let Some(row) = r.delivery {
            d.push(row, Some(r.id), true);
        }
    }

    const SQL: &str = "
        WITH cfg AS MATERIALIZED (
            SELECT set_config('meshhook.notify', 'deferred', true) AS c
        ), u AS MATERIALIZED (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::jsonb[], $6::text[])
                WITH ORDINALITY AS u(id, project_id, workflow_id, webhook_id, trigger, key, n)
        ), w AS MATERIALIZED (
            SELECT id FROM meshhook.workflows
            WHERE id IN (SELECT workflow_id FROM u) AND (SELECT c FROM cfg) IS NOT NULL
            FOR KEY SHARE
        ), v AS MATERIALIZED (
            SELECT DISTINCT ON (workflow_id) id, workflow_id, version
            FROM meshhook.workflow_versions
            WHERE workflow_id IN (SELECT id FROM w)
            ORDER BY workflow_id, version DESC
        ), r AS (
            INSERT INTO meshhook.runs (id, project_id, workflow_id, workflow_version_id, version, trigger_kind,
                                       trigger, webhook_id, idempotency_key, last_seq, created_at, updated_at)
            SELECT u.id, u.project_id, u.workflow_id, v.id, v.version, 'webhook',
                   u.trigger, u.webhook_id, u.key, 1, $7, $7
            FROM u JOIN v ON v.workflow_id = u.workflow_id
            ORDER BY u.n
            ON CONFLICT (webhook_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id, project_id, workflow_id, version, trigger
        ), e AS (
            INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at)
            SELECT r.id, 1, r.project_id, 'run_created',
                   jsonb_build_object('run_id', r.id, 'workflow_id', r.workflow_id,
                                      'version', r.version, 'trigger', r.trigger),
                   $7
            FROM r
        ), q AS (
            INSERT INTO meshhook.queue_messages (queue, vt, message)
            SELECT $8, clock_timestamp(), jsonb_build_object('run_id', r.id) FROM r
        ), h AS MATERIALIZED (
            SELECT id FROM meshhook.webhooks
            WHERE id IN (SELECT unnest($9::uuid[]))
            FOR KEY SHARE
        ), d AS (
            INSERT INTO meshhook.webhook_deliveries (webhook_id, project_id, received_at, verdict, status_code,
                                                     run_id, dedupe_key, detail, latency_ms, remote_addr)
            SELECT l.w, l.p, l.a, l.v, l.s, l.r, l.k, l.d, l.ms, l.ip::inet
            FROM unnest($9::uuid[], $10::uuid[], $11::timestamptz[], $12::text[], $13::int4[], $14::uuid[],
                        $15::text[], $16::text[], $17::float8[], $18::text[], $19::bool[])
                    AS l(w, p, a, v, s, r, k, d, ms, ip, needs_run)
            JOIN h ON h.id = l.w
            WHERE NOT l.needs_run OR l.r IN (SELECT id FROM r)
        )
        -- The counts make sure every parent row is locked, whatever plan
        -- the semi-joins above get.
        SELECT u.n, v.version, r.id IS NOT NULL AS inserted,
               (SELECT count(*) FROM w) + (SELECT count(*) FROM h) AS locked
        FROM u LEFT JOIN v ON v.workflow_id = u.workflow_id LEFT JOIN r ON r.id = u.id
        ORDER BY u.n";
    let rows: Vec<(i64, Option<i32>, bool, i64)> = sqlx::query_as(SQL)
        .bind(&ids)
        .bind(&projects)
        .bind(&workflows)
        .bind(&webhooks)
        .bind(&triggers)
        .bind(&keys)
        .bind(at)
        .bind(ORCHESTRATOR_QUEUE)
        .bind(&d.hooks)
        .bind(&d.projects)
        .bind(&d.at)
        .bind(&d.verdicts)
        .bind(&d.statuses)
        .bind(&d.runs)
        .bind(&d.keys)
        .bind(&d.details)
        .bind(&d.latencies)
        .bind(&d.addrs)
        .bind(&d.needs_run)
        .fetch_all(pool)
        .await?;
    if rows.len() != n {
        return Err(crate::Error::Corrupt(format!(
            "a batch of {n} deliveries returned {} outcomes",
            rows.len()
        )));
    }
    let mut pending = Pending::default();
    let mut outcomes = Vec::with_capacity(n);
    for ((_, version, inserted, _), run) in rows.into_iter().zip(runs) {
        outcomes.push(match (version, inserted) {
            (Some(version), true) => {
                pending.queue(ORCHESTRATOR_QUEUE);
                pending.events(run.id, run.project_id, 1, 1);
                Outcome::Started { version }
            }
            (Some(_), false) => Outcome::Duplicate,
            (None, _) => Outcome::NotPublished,
        });
    }
    Ok((outcomes, pending))
}

/// A delivery that lost to an existing `(webhook_id, key)`.
#[derive(Debug)]
pub struct Lost<'a> {
    pub webhook_id: Uuid,
    pub key: &'a str,
    /// Its delivery-log row; written with verdict `duplicate`, status 200
    /// and the earlier run's id.
    pub delivery: Option<&'a NewDelivery>,
}

/// The earlier run of each lost delivery (`None` if it cannot be seen,
/// which the caller treats as a failure), and the duplicates' delivery-log
/// rows, in one statement.
pub async fn resolve_duplicates(pool: &PgPool, lost: &[Lost<'_>]) -> Result<Vec<Option<Uuid>>> {
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let hooks: Vec<Uuid> = lost.iter().map(|l| l.webhook_id).collect();
    let keys: Vec<&str> = lost.iter().map(|l| l.key).collect();
    let mut d = DeliveryColumns::with_capacity(lost.len());
    let mut ordinals: Vec<i64> = Vec::with_capacity(lost.len());
    for (i, l) in lost.iter().enumerate() {
        if let Some(row) = l.delivery {
            let mut row = row.clone();
            row.verdict = "duplicate";
            row.status_code = 200;
            d.push(&row, None, false);
            ordinals.push(i64::try_from(i + 1).unwrap_or(i64::MAX));
        }
    }
    const SQL: &str = "
        WITH u AS MATERIALIZED (
            SELECT x.n, r.id AS run_id
            FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS x(w, k, n)
            LEFT JOIN meshhook.runs r ON r.webhook_id = x.w AND r.idempotency_key = x.k
        ), h AS MATERIALIZED (
            SELECT id FROM meshhook.webhooks WHERE id IN (SELECT unnest($3::uuid[])) FOR KEY SHARE
        ), d AS (
            INSERT INTO meshhook.webhook_deliveries (webhook_id, project_id, received_at, verdict, status_code,
                                                     run_id, dedupe_key, detail, latency_ms, remote_addr)
            SELECT l.w, l.p, l.a, l.v, l.s, u.run_id, l.k, l.d, l.ms, l.ip::inet
            FROM unnest($3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[], $7::int4[],
                        $8::text[], $9::text[], $10::float8[], $11::text[], $12::int8[])
                    AS l(w, p, a, v, s, k, d, ms, ip, n)
            JOIN h ON h.id = l.w
            JOIN u ON u.n = l.n AND u.run_id IS NOT NULL
        )
        SELECT u.n, u.run_id FROM u ORDER BY u.n";
    let rows: Vec<(i64, Option<Uuid>)> = sqlx::query_as(SQL)
        .bind(&hooks)
        .bind(&keys)
        .bind(&d.hooks)
        .bind(&d.projects)
        .bind(&d.at)
        .bind(&d.verdicts)
        .bind(&d.statuses)
        .bind(&d.keys)
        .bind(&d.details)
        .bind(&d.latencies)
        .bind(&d.addrs)
        .bind(&ordinals)
        .fetch_all(pool)
        .await?;
    // A key may in theory match several runs of different webhooks only if
    // the caller mixed them up; one row per ordinal is expected.
    let mut out = vec![None; lost.len()];
    for (n, id) in rows {
        if let Some(slot) = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| out.get_mut(i))
        {
            *slot = id;
        }
    }
    Ok(out)
}

/// Delivery-log rows as column arrays, for one `unnest`.
struct DeliveryColumns {
    hooks: Vec<Uuid>,
    projects: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
    verdicts: Vec<&'static str>,
    statuses: Vec<i32>,
    runs: Vec<Option<Uuid>>,
    keys: Vec<Option<String>>,
    details: Vec<Option<String>>,
    latencies: Vec<f64>,
    addrs: Vec<Option<String>>,
    needs_run: Vec<bool>,
}

impl DeliveryColumns {
    fn with_capacity(n: usize) -> Self {
        DeliveryColumns {
            hooks: Vec::with_capacity(n),
            projects: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            verdicts: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            runs: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            details: Vec::with_capacity(n),
            latencies: Vec::with_capacity(n),
            addrs: Vec::with_capacity(n),
            needs_run: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, row: &NewDelivery, run_id: Option<Uuid>, needs_run: bool) {
        self.hooks.push(row.webhook_id);
        self.projects.push(row.project_id);
        self.at.push(row.received_at);
        self.verdicts.push(row.verdict);
        self.statuses.push(row.status_code);
        self.runs.push(run_id);
        self.keys.push(row.dedupe_key.clone());
        self.details.push(row.detail.clone());
        self.latencies.push(row.latency_ms);
        self.addrs.push(row.remote_addr.clone());
        self.needs_run.push(needs_run);
    }
}

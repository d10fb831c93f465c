//! Per-project retention (migration 0014).
//!
//! [`prune`] deletes what each project no longer keeps — finished runs
//! (with their events) that finished more than `projects.retention_days`
//! ago, and delivery-log rows received before then — in batches of
//! [`Options::batch`] rows, one short transaction per batch, so it never
//! holds locks for long and never competes with ingest for more than a
//! moment. Then it drops whole monthly event partitions that every project
//! is done with ([`drop_expired_event_partitions`]: the cheap path once a
//! month has fully expired), and deletes old dead-lettered queue messages
//! (`queue_dead_letter_retention_days`; the queue archive's partitions are
//! dropped by [`crate::partitions::maintain`]). It also deletes the events
//! of runs that went with their workflow or project (their ids wait in
//! `deleted_runs`, migration 0016).
//!
//! Unfinished runs (queued, running, waiting on a delay) are never pruned,
//! whatever their age, nor a partition holding one of their events. Only
//! one pruner works at a time (a session advisory lock); another caller
//! returns at once with an empty report.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

/// Advisory-lock key of the pruner ("mhretain").
const LOCK_KEY: i64 = 0x6d68_7265_7461_696e;

/// Tuning of [`prune`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rows per delete statement (and transaction).
    pub batch: i64,
    /// How long a partition drop may wait for its lock before it is left
    /// for the next pass.
    pub lock_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch: 1000,
            lock_wait: Duration::from_secs(2),
        }
    }
}

/// What one pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub runs: u64,
    pub events: u64,
    pub deliveries: u64,
    pub dead_letters: u64,
    /// Event partitions dropped.
    pub partitions: Vec<String>,
    /// False when another pruner held the lock and this call did nothing.
    pub ran: bool,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.runs == 0
            && self.events == 0
            && self.deliveries == 0
            && self.dead_letters == 0
            && self.partitions.is_empty()
    }
}

/// One retention pass over every project (see the module docs).
pub async fn prune(pool: &PgPool, opts: Options) -> Result<Report> {
    let mut lock = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *lock)
        .await?;
    if !got {
        return Ok(Report::default());
    }
    let result = prune_locked(pool, opts).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *lock)
        .await;
    if unlocked.is_err() {
        // The lock goes with the session: do not return it to the pool.
        lock.detach();
    }
    result
}

async fn prune_locked(pool: &PgPool, opts: Options) -> Result<Report> {
    let mut report = Report {
        ran: true,
        ..Report::default()
    };
    let batch = opts.batch.max(1);
    let projects: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT id, retention_days FROM meshhook.projects ORDER BY id")
            .fetch_all(pool)
            .await?;
    for (project, days) in &projects {
        loop {
            let (runs, events): (i64, i64) = sqlx::query_as(
                "WITH gone AS (
                     DELETE FROM meshhook.runs WHERE id IN (
                         SELECT id FROM meshhook.runs
                         WHERE project_id = $1
                           AND created_at < now() - make_interval(days => $2)
                           AND finished_at < now() - make_interval(days => $2)
                           AND status IN ('succeeded', 'failed', 'cancelled')
                         LIMIT $3)
                     RETURNING id
                 ), ev AS (
                     DELETE FROM meshhook.events WHERE run_id IN (SELECT id FROM gone) RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM ev)",
            )
            .bind(project)
            .bind(days)
            .bind(batch)
            .fetch_one(pool)
            .await?;
            report.runs += u64::try_from(runs).unwrap_or(0);
            report.events += u64::try_from(events).unwrap_or(0);
            if runs < batch {
                break;
            }
        }
        loop {
            let n = sqlx::query(
                "DELETE FROM meshhook.webhook_deliveries WHERE id IN (
                     SELECT id FROM meshhook.webhook_deliveries
                     WHERE project_id = $1 AND received_at < now() - make_interval(days => $2)
                     LIMIT $3)",
            )
            .bind(project)
            .bind(days)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
            report.deliveries += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
    }

    // Events of runs deleted with their workflow or project (migration
    // 0016 records their ids).
    loop {
        let (runs, events): (i64, i64) = sqlx::query_as(
            "WITH batch AS (
                 SELECT run_id FROM meshhook.deleted_runs ORDER BY deleted_at LIMIT $1
             ), ev AS (
                 DELETE FROM meshhook.events WHERE run_id IN (SELECT run_id FROM batch) RETURNING 1
             ), done AS (
                 DELETE FROM meshhook.deleted_runs WHERE run_id IN (SELECT run_id FROM batch) RETURNING 1
             )
             SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM ev)",
        )
        .bind(batch)
        .fetch_one(pool)
        .await?;
        report.events += u64::try_from(events).unwrap_or(0);
        if runs < batch {
            break;
        }
    }

    // Whole partitions: an event partition goes once the longest retention
    // (of any project, and the instance's `events_retention_days`) has
    // passed for all of it.
    let instance_days: Option<f64> = setting(pool, "events_retention_days").await?;
    let longest = projects
        .iter()
        .map(|(_, d)| f64::from(*d))
        .fold(instance_days.unwrap_or(0.0), f64::max);
    if longest > 0.0 {
        report.partitions.extend(
            drop_expired_event_partitions(
                pool,
                Duration::from_secs_f64(longest * 86_400.0),
                opts.lock_wait,
            )
            .await?,
        );
    }
    if let Some(days) = setting(pool, "queue_dead_letter_retention_days")
        .await?
        .filter(|d| *d > 0.0)
    {
        loop {
            let n = sqlx::query(
                "DELETE FROM meshhook.queue_dead_letters WHERE msg_id IN (
                     SELECT msg_id FROM meshhook.queue_dead_letters
                     WHERE dead_at < now() - make_interval(secs => $1) LIMIT $2)",
            )
            .bind(days * 86_400.0)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
            report.dead_letters += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
    }
    Ok(report)
}

/// Drops the event partitions whose range ended more than `horizon` ago
/// and that hold no event of an unfinished run; a partition whose lock is
/// not granted within `lock_wait` is left for the next pass.
pub async fn drop_expired_event_partitions(
    pool: &PgPool,
    horizon: Duration,
    lock_wait: Duration,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT meshhook.drop_expired_event_partitions(make_interval(secs => $1), make_interval(secs => $2))",
    )
    .bind(horizon.as_secs_f64())
    .bind(lock_wait.as_secs_f64())
    .fetch_all(pool)
    .await?)
}

async fn setting(pool: &PgPool, key: &str) -> Result<Option<f64>> {
    Ok(
        sqlx::query_scalar("SELECT (value #>> '{}')::float8 FROM meshhook.settings WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

//! Time-partition maintenance for the event log and the queue archive.
//!
//! Both tables are range-partitioned by month (see migrations 0003/0004).
//! [`maintain`] creates the partitions for the coming months and drops the
//! ones past retention; the orchestrator calls it periodically, and
//! `meshhook migrate` once.

use std::time::Duration;

use sqlx::PgExecutor;

use crate::Result;

/// The partitioned tables and the settings key of their retention.
pub const PARTITIONED: &[(&str, &str)] = &[
    ("meshhook.events", "events_retention_days"),
    ("meshhook.queue_archive", "queue_archive_retention_days"),
];

/// Creates the monthly partitions of `table` for this month and
/// `months_ahead` more. Returns the names created.
pub async fn ensure<'e>(
    ex: impl PgExecutor<'e>,
    table: &str,
    months_ahead: i32,
) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT meshhook.ensure_monthly_partitions($1::regclass, $2)")
            .bind(table)
            .bind(months_ahead)
            .fetch_all(ex)
            .await?,
    )
}

/// Drops the partitions of `table` whose range ended more than `retention`
/// ago. Returns the names dropped.
pub async fn drop_expired<'e>(
    ex: impl PgExecutor<'e>,
    table: &str,
    retention: Duration,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT meshhook.drop_expired_partitions($1::regclass, make_interval(secs => $2))",
    )
    .bind(table)
    .bind(retention.as_secs_f64())
    .fetch_all(ex)
    .await?)
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
}

/// Ensures two months of partitions ahead for every partitioned table and
/// drops the queue archive's partitions past `queue_archive_retention_days`
/// (`meshhook.settings`). Event partitions are dropped by
/// [`crate::retention::prune`], which knows the projects' retention and
/// keeps partitions that unfinished runs still need.
pub async fn maintain(pool: &sqlx::PgPool) -> Result<Report> {
    let mut report = Report::default();
    for (table, key) in PARTITIONED {
        report.created.extend(ensure(pool, table, 2).await?);
        if *table == "meshhook.events" {
            continue;
        }
        let days: Option<f64> = sqlx::query_scalar(
            "SELECT (value #>> '{}')::float8 FROM meshhook.settings WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await?;
        if let Some(days) = days.filter(|d| *d > 0.0) {
            let retention = Duration::from_secs_f64(days * 86_400.0);
            report
                .dropped
                .extend(drop_expired(pool, table, retention).await?);
        }
    }
    Ok(report)
}

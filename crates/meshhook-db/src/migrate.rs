//! The forward-only migrations runner.
//!
//! The SQL files in the repository's `migrations/` folder are compiled into
//! the binary. Each is applied once, in its own transaction, in version
//! order, and recorded with a SHA-256 checksum; a file changed after it was
//! applied is refused rather than silently skipped. A session-level advisory
//! lock makes concurrent `migrate` runs (several containers starting at once)
//! safe: the second waits, then finds nothing to do.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};

use crate::{Error, Result};

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../../migrations/", $name, ".sql")),
        }
    };
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_roles_and_auth"),
    migration!(2, "0002_tenancy_and_workflows"),
    migration!(3, "0003_runs_and_events"),
    migration!(4, "0004_queue"),
    migration!(5, "0005_row_level_security"),
    migration!(6, "0006_api_indexes"),
    migration!(7, "0007_event_notify"),
    migration!(8, "0008_run_finished_notify"),
    migration!(11, "0011_ingest_fast_path"),
    migration!(12, "0012_redaction"),
    migration!(13, "0013_metrics_views"),
    migration!(14, "0014_retention"),
    migration!(15, "0015_alerts"),
    migration!(16, "0016_deleted_runs_events"),
];

/// Advisory-lock key shared by every MeshHook migrator ("meshmigr").
const LOCK_KEY: i64 = 0x6d65_7368_6d69_6772;

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// What a migration run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Versions applied by this run.
    pub applied: Vec<i64>,
    /// Versions that were already there.
    pub already: usize,
}

/// Applies every pending migration.
pub async fn run(pool: &PgPool) -> Result<Report> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = apply_all(&mut conn).await;
    // Unlock even when applying failed; a failed unlock only means the
    // connection is gone, which releases the lock anyway.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result
}

async fn apply_all(conn: &mut PgConnection) -> Result<Report> {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS meshhook;
         CREATE TABLE IF NOT EXISTS meshhook.schema_migrations (
             version    bigint PRIMARY KEY,
             name       text NOT NULL,
             checksum   bytea NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .execute(&mut *conn)
    .await?;

    let applied: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT version, name, checksum FROM meshhook.schema_migrations ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;

    let mut report = Report::default();
    for (version, name, sum) in &applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => return Err(Error::MigrationUnknown(*version)),
            Some(m) if checksum(m.sql) != *sum => {
                return Err(Error::MigrationChanged {
                    version: *version,
                    name: name.clone(),
                });
            }
            Some(_) => report.already += 1,
        }
    }

    for m in MIGRATIONS {
        if applied.iter().any(|(v, _, _)| *v == m.version) {
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO meshhook.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(checksum(m.sql))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        report.applied.push(m.version);
    }
    Ok(report)
}

/// True when every migration this build knows is applied (for `/readyz`).
pub async fn is_current(pool: &PgPool) -> Result<bool> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('meshhook.schema_migrations')::text")
            .fetch_one(pool)
            .await?;
    if exists.is_none() {
        return Ok(false);
    }
    let max: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM meshhook.schema_migrations")
            .fetch_one(pool)
            .await?;
    Ok(max == Some(latest))
}

/// A fingerprint of all migrations, used to name test template databases.
pub fn fingerprint() -> String {
    let mut h = Sha256::new();
    for m in MIGRATIONS {
        h.update(m.version.to_be_bytes());
        h.update(m.sql.as_bytes());
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

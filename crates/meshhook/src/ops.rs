//! The small HTTP server every worker role runs on PORT: `/healthz`,
//! `/readyz` (database reachable and migrated) for orchestrators' probes,
//! and `/metrics` (Prometheus text) for scrapers.

use std::future::Future;

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use meshhook_db::PgPool;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

async fn readyz(State(pool): State<PgPool>) -> Result<Json<Value>, meshhook_api::Error> {
    meshhook_api::health::readiness(&pool).await.map(Json)
}

async fn metrics(State(pool): State<PgPool>) -> axum::response::Response {
    meshhook_api::health::exposition(&pool).await
}

/// The ops router for a worker role.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(pool)
}

/// Runs `worker` next to the ops server until both finish; the shutdown
/// token stops both.
pub async fn run_worker(
    role: &str,
    cfg: &Config,
    pool: PgPool,
    shutdown: CancellationToken,
    worker: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen_addr())
        .await
        .with_context(|| format!("binding {} for the {role} health server", cfg.listen_addr()))?;
    tracing::info!(role, addr = %cfg.listen_addr(), "worker started");
    let token = shutdown.clone();
    let server = axum::serve(listener, router(pool))
        .with_graceful_shutdown(async move { token.cancelled().await });
    let (served, ()) = tokio::join!(server, worker);
    served.context("health server")
}

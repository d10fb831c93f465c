//! MeshHook's HTTP API: the `/api/v1` contract (../shared/API.md), webhook
//! ingress at `/hooks/{token}`, `/healthz` and `/readyz`, and the SPA's
//! static files at `/` (history-mode routes fall back to `index.html`).
//!
//! [`app`] builds the router from a [`Context`] so tests can drive it
//! in-process; [`run`] serves it until the shutdown token fires. The API
//! holds no state of its own beyond caches: every fact is in PostgreSQL.

pub mod error;
pub mod health;
pub mod spa;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use meshhook_db::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::Error;

/// Settings the API needs, validated by the binary at start-up.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Base of webhook URLs handed to users (`MESHHOOK_PUBLIC_URL`).
    pub public_url: String,
    /// Where the SPA comes from.
    pub spa: spa::Source,
}

/// Everything a handler may use.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}

/// The whole router.
pub fn app(ctx: Context) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(health::router())
        .fallback(spa::service(&ctx.settings.spa))
        .with_state(ctx)
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Serves [`app`] on `addr` until `shutdown` fires, then drains in-flight
/// requests.
pub async fn run(
    ctx: Context,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve(ctx, listener, shutdown).await
}

/// Like [`run`], on a listener the caller bound (port 0 in tests).
pub async fn serve(
    ctx: Context,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    axum::serve(
        listener,
        app(ctx).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

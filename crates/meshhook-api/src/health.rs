//! `/healthz` (the process is up), `/readyz` (the database is reachable
//! and fully migrated) and `/metrics` (Prometheus text,
//! docs/observability.md). Load balancers send traffic only when ready.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::{Context, Error};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Prometheus text exposition of this process's metrics and the
/// database gauges (docs/observability.md).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
async fn metrics(State(ctx): State<Context>) -> axum::response::Response {
    exposition(&ctx.pool).await
}

/// The `/metrics` answer, shared by every role.
pub async fn exposition(pool: &meshhook_db::PgPool) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = meshhook_metrics::render(pool).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            meshhook_metrics::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database is reachable and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
async fn readyz(State(ctx): State<Context>) -> Result<Json<Value>, Error> {
    readiness(&ctx.pool).await.map(Json)
}

/// The readiness check shared by every role.
pub async fn readiness(pool: &meshhook_db::PgPool) -> Result<Value, Error> {
    match meshhook_db::migrate::is_current(pool).await {
        Ok(true) => Ok(json!({"status": "ready", "database": "ok", "migrations": "current"})),
        Ok(false) => Err(Error::unavailable(
            "database reachable but migrations are not applied; run `meshhook migrate`",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Error::unavailable("database unreachable"))
        }
    }
}

//! `/healthz` (the process is up) and `/readyz` (the database is reachable
//! and fully migrated). Load balancers send traffic only when ready.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::{Context, Error};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

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

//! Connection pools.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// How a role sizes its pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Maximum connections in the pool.
    pub max_connections: u32,
    /// Give up acquiring a connection after this long.
    pub acquire_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            application_name: "meshhook".to_owned(),
        }
    }
}

/// Opens a pool to `url`. Statement logging is turned down to debug so that
/// parameters (which may hold payloads) never reach info-level logs.
pub async fn connect(url: &str, opts: &PoolOptions) -> Result<PgPool, sqlx::Error> {
    let connect = url
        .parse::<PgConnectOptions>()?
        .application_name(&opts.application_name)
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
    PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(connect)
        .await
}

//! All of MeshHook's SQL lives here: the forward-only migrations runner, the
//! pgmq-style durable queue, the event log and the repositories, plus the
//! embedded PostgreSQL cluster that `meshhook dev` and the tests start when
//! no `DATABASE_URL` is given.
//!
//! Every data function takes an executor (`impl PgExecutor`) so callers
//! compose several of them in one transaction. This crate knows nothing of
//! HTTP; it must not depend on axum or reqwest.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod breakers;
pub mod embedded;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod partitions;
pub mod pool;
pub mod projects;
pub mod queue;
pub mod retention;
pub mod run_views;
pub mod runs;
pub mod secrets;
pub mod session;
pub mod testing;
pub mod users;
pub mod vault;
pub mod webhooks;
pub mod workflows;

pub use pool::{PoolOptions, connect};
pub use sqlx::{PgPool, Postgres, Transaction};

/// Errors from the data layer that callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(
        "migration {version} ({name}) was changed after it was applied; migrations are forward-only, add a new one instead"
    )]
    MigrationChanged { version: i64, name: String },
    #[error(
        "the database has migration {0} applied, which this build does not know; run a newer MeshHook"
    )]
    MigrationUnknown(i64),
    #[error("queue {0:?} does not exist")]
    UnknownQueue(String),
    #[error("run {run_id}: another writer appended after seq {expected_last_seq}")]
    SeqConflict {
        run_id: uuid::Uuid,
        expected_last_seq: i64,
    },
    #[error("stored data does not decode: {0}")]
    Corrupt(String),
    /// A row the write refers to was deleted (the check a foreign key
    /// would make; see migration 0011).
    #[error("the {0} this refers to no longer exists")]
    Gone(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

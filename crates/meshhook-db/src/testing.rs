//! Fresh databases for tests.
//!
//! [`TestDb::new`] gives every test its own database, cloned from a
//! migrated template so that each costs a `CREATE DATABASE ... TEMPLATE`
//! (tens of milliseconds) instead of a migration run.
//!
//! The server: `MESHHOOK_TEST_DATABASE_URL`, else `DATABASE_URL` (any
//! database on the server; tests create their own next to it), else a
//! private throwaway cluster started once per test process (fsync off) and
//! removed when the process exits. `cargo xtask test` starts one cluster for
//! the whole run and passes it in `MESHHOOK_TEST_DATABASE_URL`.

use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::embedded::{Cluster, Options};
use crate::{Result, migrate, pool};

/// Creates database `name` on the server at `admin_url` unless it exists.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        match sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            // A concurrent creator won the race.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SERVER: OnceCell<String> = OnceCell::const_new();

/// The admin URL (a database on the test server we may connect to).
async fn server_url() -> String {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("MESHHOOK_TEST_DATABASE_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
            {
                return url;
            }
            let dir = std::env::temp_dir().join(format!("meshhook-test-pg-{}", std::process::id()));
            let mut opts = Options::new(dir);
            opts.fsync = false;
            opts.ephemeral = true;
            let cluster = Cluster::start_async(opts)
                .await
                .expect("starting a private PostgreSQL for tests");
            let url = cluster.url_for("postgres");
            // Kept for the life of the process; the watchdog stops it at exit.
            let _ = CLUSTER.set(cluster);
            url
        })
        .await
        .clone()
}

fn with_database(url: &str, db: &str) -> Result<PgConnectOptions> {
    Ok(url.parse::<PgConnectOptions>()?.database(db))
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    /// A pool on the database.
    pub pool: PgPool,
    /// Its URL, for processes the test starts.
    pub url: String,
    /// Its name.
    pub name: String,
}

impl TestDb {
    /// Creates a fresh migrated database.
    pub async fn new() -> Self {
        Self::try_new().await.expect("creating a test database")
    }

    /// Creates a fresh, empty database (no migrations applied), for tests
    /// of the migration path itself.
    pub async fn empty() -> Self {
        Self::try_create(None)
            .await
            .expect("creating an empty test database")
    }

    async fn try_new() -> Result<Self> {
        let admin = server_url().await;
        let template = format!("meshhook_tmpl_{}", migrate::fingerprint());
        ensure_template(&admin, &template).await?;
        Self::try_create(Some(&template)).await
    }

    async fn try_create(template: Option<&str>) -> Result<Self> {
        let admin = server_url().await;
        let template = template.unwrap_or("template0");

        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;

        let opts = with_database(&admin, &name)?;
        let url = opts.to_url_lossy().to_string();
        let pool = pool::connect(
            &url,
            &pool::PoolOptions {
                max_connections: 20,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self { pool, url, name })
    }
}

/// Creates and migrates the template database once per server and
/// migration set; concurrent test processes serialise on an advisory lock.
async fn ensure_template(admin: &str, template: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin).await?;
    sqlx::query("SELECT pg_advisory_lock(7243550)")
        .execute(&mut conn)
        .await?;
    let ready: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)",
    )
    .bind(template)
    .fetch_one(&mut conn)
    .await?;
    if !ready {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{template}\""
        )))
        .execute(&mut conn)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{template}\""
        )))
        .execute(&mut conn)
        .await?;
        let url = with_database(admin, template)?.to_url_lossy().to_string();
        let tpool = pool::connect(&url, &pool::PoolOptions::default()).await?;
        migrate::run(&tpool).await?;
        tpool.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{template}\" WITH IS_TEMPLATE true"
        )))
        .execute(&mut conn)
        .await?;
    }
    sqlx::query("SELECT pg_advisory_unlock(7243550)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

//! Configuration: one struct, read from environment variables (flags mirror
//! them), checked once at start-up and passed down. `.env.example` lists
//! every variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use meshhook_db::embedded::{Cluster, Options};
use meshhook_db::{PgPool, PoolOptions};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (production).
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Unset in `dev`: a private cluster is started under the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Port to serve on (API, or health and metrics for workers).
    #[arg(long, env = "PORT", default_value_t = 8080, global = true)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "MESHHOOK_BIND", default_value = "0.0.0.0", global = true)]
    pub bind: std::net::IpAddr,
    /// Where `dev` keeps its private PostgreSQL cluster and generated keys.
    #[arg(
        long,
        env = "MESHHOOK_DATA_DIR",
        default_value = "./.meshhook",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Public base URL of this deployment, used in webhook URLs (default http://localhost:PORT).
    #[arg(long, env = "MESHHOOK_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// HS256 secret for access tokens (a Supabase project's JWT secret works). `dev` generates one.
    #[arg(
        long,
        env = "MESHHOOK_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Key-encryption key for secrets: base64 of 32 bytes, optionally `id:base64`. `dev` generates one.
    #[arg(long, env = "MESHHOOK_KEK", global = true, hide_env_values = true)]
    pub kek: Option<String>,
    /// Previous key-encryption keys (comma-separated `id:base64`), still readable during a rotation.
    #[arg(
        long,
        env = "MESHHOOK_KEK_PREVIOUS",
        default_value = "",
        global = true,
        hide_env_values = true
    )]
    pub kek_previous: String,
    /// Comma-separated CIDRs or host names the executor may call despite the SSRF guard.
    #[arg(
        long,
        env = "MESHHOOK_EGRESS_ALLOWLIST",
        default_value = "",
        global = true
    )]
    pub egress_allowlist: String,
    /// Visibility timeout of claimed queue work: how soon the work of a
    /// crashed worker is picked up again.
    #[arg(
        long,
        env = "MESHHOOK_QUEUE_VT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub queue_vt_secs: u64,
    /// How often the orchestrator refreshes the metrics views behind
    /// `GET /api/v1/projects/{pid}/metrics`.
    #[arg(
        long,
        env = "MESHHOOK_METRICS_REFRESH_SECS",
        default_value_t = 60,
        global = true
    )]
    pub metrics_refresh_secs: u64,
    /// Database connections per process.
    #[arg(
        long,
        env = "MESHHOOK_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub pool_size: u32,
    /// Take API clients' addresses (audit log, sign-in rate limits) from the
    /// first `X-Forwarded-For` hop. Only behind a proxy that sets it.
    #[arg(
        long,
        env = "MESHHOOK_TRUST_PROXY",
        default_value_t = false,
        global = true
    )]
    pub trust_proxy: bool,
    /// Serve the SPA from this built directory instead of the embedded copy.
    #[arg(long, env = "MESHHOOK_SPA_DIR", global = true)]
    pub spa_dir: Option<PathBuf>,
    /// How often the orchestrator runs database maintenance: partitions
    /// for the coming months, and per-project retention (pruning).
    #[arg(
        long,
        env = "MESHHOOK_MAINTENANCE_INTERVAL_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub maintenance_interval_secs: u64,
    /// On SIGTERM, how long the executor lets in-flight HTTP calls finish
    /// (and record their results) before it abandons them; abandoned jobs
    /// reappear after their visibility timeout, so nothing is lost either
    /// way.
    #[arg(
        long,
        env = "MESHHOOK_SHUTDOWN_GRACE_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_grace_secs: u64,
    /// Log format.
    #[arg(long, env = "MESHHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// While `dev` runs its private cluster, the cluster's URL is kept in this
/// file under the data dir (mode 0600) so tools can reach it.
pub const DEV_URL_FILE: &str = "dev-url";

/// An open database, with the private cluster behind it when there is one
/// (dropping it stops the cluster).
pub struct Database {
    pub pool: PgPool,
    pub cluster: Option<Cluster>,
}

impl Config {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{}", self.port))
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn pool_options(&self, application_name: &str) -> PoolOptions {
        PoolOptions {
            max_connections: self.pool_size.max(2),
            application_name: application_name.to_owned(),
            ..PoolOptions::default()
        }
    }

    /// The secrets keyring from `MESHHOOK_KEK` (+ `MESHHOOK_KEK_PREVIOUS`).
    pub fn keyring(&self) -> anyhow::Result<meshhook_db::vault::Keyring> {
        let current = self
            .kek
            .as_deref()
            .context("MESHHOOK_KEK is not set: it encrypts the secrets vault (generate one with `openssl rand -base64 32`)")?;
        let previous: Vec<&str> = self
            .kek_previous
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        meshhook_db::vault::Keyring::parse(current, &previous).context("MESHHOOK_KEK is invalid")
    }

    /// The orchestrator's context.
    pub fn orchestrator(&self, pool: PgPool) -> meshhook_orchestrator::Context {
        let mut ctx = meshhook_orchestrator::Context::new(pool);
        ctx.options.vt = std::time::Duration::from_secs(self.queue_vt_secs.max(1));
        ctx.options.maintenance_every =
            std::time::Duration::from_secs(self.maintenance_interval_secs.max(1));
        ctx.options.metrics_refresh_every =
            std::time::Duration::from_secs(self.metrics_refresh_secs.max(1));
        ctx
    }

    /// The executor's context: keyring, SSRF guard, HTTP client.
    pub fn executor(&self, pool: PgPool) -> anyhow::Result<meshhook_executor::Context> {
        let egress = meshhook_executor::egress::Egress::parse(&self.egress_allowlist)
            .map_err(|e| anyhow::anyhow!("MESHHOOK_EGRESS_ALLOWLIST: {e}"))?;
        let vt = std::time::Duration::from_secs(self.queue_vt_secs.max(1));
        let options = meshhook_executor::Options {
            claim_vt: vt,
            record_slack: vt.min(std::time::Duration::from_secs(15)),
            drain_timeout: std::time::Duration::from_secs(self.shutdown_grace_secs),
            ..meshhook_executor::Options::default()
        };
        meshhook_executor::Context::new(
            pool,
            std::sync::Arc::new(self.keyring()?),
            std::sync::Arc::new(egress),
            options,
        )
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))
    }

    /// Checks what the API role needs: a JWT secret of at least 32 bytes
    /// and a valid keyring. `meshhook api` calls it before serving.
    pub fn check_api(&self) -> anyhow::Result<()> {
        let secret = self.jwt_secret.as_deref().context(
            "MESHHOOK_JWT_SECRET is not set: it signs access tokens (use your Supabase project's JWT secret, or `openssl rand -base64 32`)",
        )?;
        anyhow::ensure!(
            secret.len() >= 32,
            "MESHHOOK_JWT_SECRET must be at least 32 characters"
        );
        self.keyring()?;
        Ok(())
    }

    /// The API's settings. A missing or invalid JWT secret or keyring
    /// leaves the routes that need it answering 503 (`check_api` refuses
    /// to start `meshhook api` that way).
    pub fn api_settings(&self) -> meshhook_api::Settings {
        let keyring = match self.kek.as_deref().map(|_| self.keyring()) {
            Some(Ok(k)) => Some(std::sync::Arc::new(k)),
            Some(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "secrets vault disabled");
                None
            }
            None => None,
        };
        meshhook_api::Settings {
            public_url: self.public_url(),
            spa: match &self.spa_dir {
                Some(dir) => meshhook_api::spa::Source::Dir(dir.clone()),
                None => meshhook_api::spa::Source::Embedded,
            },
            jwt_secret: self
                .jwt_secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| meshhook_api::auth::JwtSecret::new(s.as_bytes())),
            keyring,
            trust_forwarded_for: self.trust_proxy,
            ..meshhook_api::Settings::default()
        }
    }

    /// Connects to `DATABASE_URL` (required by the separate roles).
    pub async fn database(&self) -> anyhow::Result<Database> {
        let url = self
            .database_url
            .clone()
            .context("DATABASE_URL is not set (only `meshhook dev` starts a private PostgreSQL)")?;
        let pool = meshhook_db::connect(&url, &self.pool_options("meshhook"))
            .await
            .context("connecting to DATABASE_URL")?;
        Ok(Database {
            pool,
            cluster: None,
        })
    }

    /// For one-shot tools (`replay`): `DATABASE_URL`, else the running
    /// `dev`'s private cluster (its URL is in `<data dir>/dev-url`), else
    /// the private cluster started now.
    pub async fn database_for_tool(&self) -> anyhow::Result<Database> {
        if self.database_url.is_none()
            && let Ok(url) = std::fs::read_to_string(self.data_dir.join(DEV_URL_FILE))
            && let Ok(pool) =
                meshhook_db::connect(url.trim(), &self.pool_options("meshhook-tool")).await
        {
            return Ok(Database {
                pool,
                cluster: None,
            });
        }
        self.database_or_embedded().await
    }

    /// `DATABASE_URL` when set; otherwise the private cluster under the
    /// data dir, started now. Migrations run either way.
    pub async fn database_or_embedded(&self) -> anyhow::Result<Database> {
        let db = if self.database_url.is_some() {
            self.database().await?
        } else {
            tracing::info!(data_dir = %self.data_dir.display(), "DATABASE_URL unset: starting a private PostgreSQL");
            let cluster = Cluster::start_async(Options::new(&self.data_dir)).await?;
            let url = cluster.url();
            let pool = meshhook_db::connect(&url, &self.pool_options("meshhook-dev"))
                .await
                .context("connecting to the private PostgreSQL")?;
            tracing::info!(port = cluster.port(), "private PostgreSQL ready");
            Database {
                pool,
                cluster: Some(cluster),
            }
        };
        let report = meshhook_db::migrate::run(&db.pool)
            .await
            .context("migrating the database")?;
        if !report.applied.is_empty() {
            tracing::info!(applied = ?report.applied, "migrations applied");
        }
        meshhook_db::partitions::maintain(&db.pool)
            .await
            .context("creating event partitions")?;
        Ok(db)
    }
}

/// Logging: `RUST_LOG` picks levels per module (default `default`, e.g.
/// `info,sqlx=warn`).
pub fn init_logging(cfg: &Config, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

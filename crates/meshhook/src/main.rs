//! The one MeshHook binary. Each subcommand is a role (`api`,
//! `orchestrator`, `executor`), all roles at once (`dev`, with a private
//! PostgreSQL when `DATABASE_URL` is unset), or a tool (`migrate`, `bench`).
//! Configuration comes from environment variables (flags mirror them); see
//! `.env.example`.

mod bench;
mod config;
mod dev;
mod ops;
mod replay;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "meshhook",
    version,
    about = "Webhook-first, durable workflow engine on PostgreSQL"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// All roles in one process; starts a private PostgreSQL under
    /// MESHHOOK_DATA_DIR when DATABASE_URL is unset. Serves on PORT.
    Dev,
    /// The HTTP API and webhook ingress.
    Api,
    /// The orchestrator worker (health and metrics on PORT).
    Orchestrator,
    /// The HTTP executor worker (health and metrics on PORT).
    Executor,
    /// Applies pending database migrations and exits.
    Migrate,
    /// Applies every project's retention now (the orchestrator also does
    /// it every MESHHOOK_MAINTENANCE_INTERVAL_SECS) and prints what went.
    Prune,
    /// Checks that runs replay deterministically from their event logs.
    Replay(replay::Args),
    /// Secrets vault maintenance.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Benchmarks against the configured (or a private) database.
    #[command(subcommand)]
    Bench(bench::Bench),
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-wraps every secret's data key under the current MESHHOOK_KEK.
    /// Keys named in MESHHOOK_KEK_PREVIOUS are still read. Safe while the
    /// API and workers run: rows move in batches, each update a short
    /// transaction that only applies if nobody changed the row meanwhile.
    RotateKek,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Benchmarks log warnings only (a line per job would be measured too).
    let default_log = match cli.command {
        Command::Bench(_) => "warn",
        _ => "info,sqlx=warn",
    };
    config::init_logging(&cli.config, default_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meshhook: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (plus causes) for the person at the terminal.
            eprintln!("meshhook: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let cfg = cli.config;
    match cli.command {
        Command::Dev => dev::run(cfg, shutdown).await,
        Command::Api => {
            let db = cfg.database().await?;
            cfg.check_api()?;
            let addr = cfg.listen_addr();
            let ctx = meshhook_api::Context {
                pool: db.pool.clone(),
                settings: std::sync::Arc::new(cfg.api_settings()),
            };
            meshhook_api::run(ctx, addr, shutdown)
                .await
                .context("serving the API")
        }
        Command::Orchestrator => {
            let db = cfg.database().await?;
            let ctx = cfg.orchestrator(db.pool.clone());
            ops::run_worker(
                "orchestrator",
                &cfg,
                db.pool.clone(),
                shutdown.clone(),
                async move {
                    meshhook_orchestrator::run(ctx, shutdown).await;
                },
            )
            .await
        }
        Command::Executor => {
            let db = cfg.database().await?;
            let ctx = cfg.executor(db.pool.clone())?;
            ops::run_worker(
                "executor",
                &cfg,
                db.pool.clone(),
                shutdown.clone(),
                async move {
                    meshhook_executor::run(ctx, shutdown).await;
                },
            )
            .await
        }
        Command::Migrate => {
            let url = cfg.database_url.clone().context(
                "DATABASE_URL is not set: `meshhook migrate` needs the database to migrate",
            )?;
            let pool = meshhook_db::connect(&url, &cfg.pool_options("meshhook-migrate"))
                .await
                .context("connecting to DATABASE_URL")?;
            let report = meshhook_db::migrate::run(&pool).await?;
            let parts = meshhook_db::partitions::maintain(&pool).await?;
            println!(
                "migrations: {} applied ({:?}), {} already present; partitions created: {:?}",
                report.applied.len(),
                report.applied,
                report.already,
                parts.created
            );
            Ok(())
        }
        Command::Prune => {
            let url = cfg
                .database_url
                .clone()
                .context("DATABASE_URL is not set: `meshhook prune` needs the database to prune")?;
            let pool = meshhook_db::connect(&url, &cfg.pool_options("meshhook-prune"))
                .await
                .context("connecting to DATABASE_URL")?;
            let r =
                meshhook_db::retention::prune(&pool, meshhook_db::retention::Options::default())
                    .await?;
            anyhow::ensure!(
                r.ran,
                "another pruner is running (the orchestrator's maintenance); try again later"
            );
            println!(
                "pruned: {} runs, {} events, {} delivery-log rows, {} dead letters; partitions dropped: {:?}",
                r.runs, r.events, r.deliveries, r.dead_letters, r.partitions
            );
            Ok(())
        }
        Command::Replay(args) => replay::run(args, &cfg).await,
        Command::Secrets(SecretsCommand::RotateKek) => rotate_kek(&cfg).await,
        Command::Bench(b) => bench::run(b, &cfg).await,
    }
}

/// `meshhook secrets rotate-kek`: moves every data key to the current KEK.
async fn rotate_kek(cfg: &Config) -> anyhow::Result<()> {
    let keyring = cfg.keyring()?;
    let db = cfg.database_for_tool().await?;
    let mut conn = db.pool.acquire().await?;
    let report = meshhook_db::vault::rewrap(&mut conn, &keyring)
        .await
        .context("re-wrapping data keys")?;
    drop(conn);
    db.pool.close().await;
    println!(
        "re-wrapped {} data key(s) (secrets, alert rules, webhook signing keys) under key `{}`",
        report.moved,
        keyring.current_id()
    );
    if !report.unreadable.is_empty() {
        anyhow::bail!(
            "{} secret(s) could not be opened with the configured keys and were left as they were \
             (their KEK is missing from MESHHOOK_KEK_PREVIOUS, or the row was altered): {:?}",
            report.unreadable.len(),
            report.unreadable
        );
    }
    Ok(())
}

/// SIGTERM or Ctrl-C starts a graceful shutdown; a second one exits at once.
fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for _ in 0..2 {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if token.is_cancelled() {
                eprintln!("meshhook: second signal, exiting now");
                std::process::exit(130);
            }
            tracing::info!("shutting down (signal again to force)");
            token.cancel();
        }
    });
}

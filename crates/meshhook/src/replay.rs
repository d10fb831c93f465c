//! `meshhook replay <run_id>...`: refolds each run's log, re-runs every
//! decision at its recorded time, and compares with the stored run. Prints
//! `deterministic`, or the mismatches (and exits 1).

use anyhow::Context as _;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs to check.
    #[arg(required = true)]
    runs: Vec<Uuid>,
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    let db = cfg.database_for_tool().await?;
    let mut conn = db.pool.acquire().await.context("connecting")?;
    let mut failed = 0usize;
    let many = args.runs.len() > 1;
    for id in &args.runs {
        let check = meshhook_orchestrator::engine::replay_check(&mut conn, *id)
            .await
            .with_context(|| format!("replaying run {id}"))?;
        let prefix = if many {
            format!("{id}: ")
        } else {
            String::new()
        };
        if check.deterministic {
            println!("{prefix}deterministic");
        } else {
            failed += 1;
            println!("{prefix}NOT deterministic");
            for m in &check.mismatches {
                println!("  - {m}");
            }
        }
    }
    drop(conn);
    db.pool.close().await;
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} runs are not deterministic",
        args.runs.len()
    );
    Ok(())
}

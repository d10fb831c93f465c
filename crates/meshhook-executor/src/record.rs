//! Recording an attempt's result: event, orchestrator wake-up, breaker
//! update and ack in one transaction, at most once per attempt.

use std::time::Duration;

use chrono::Utc;
use meshhook_core::state::fold;
use meshhook_db::runs::{self, EXECUTOR_QUEUE, ORCHESTRATOR_QUEUE, RunRow};
use meshhook_db::{Error, Result, breakers, queue};
use sqlx::PgConnection;

use crate::Context;
use crate::job::Job;
use crate::send::{Health, Outcome};

/// Attempts to commit a result before giving up (the job then reappears
/// after its visibility timeout and the request is repeated).
const RECORD_TRIES: u32 = 3;

/// Whether the run still waits for this attempt's result (run exists, is
/// not finished, and the attempt is the one in flight).
async fn accepts(ctx: &Context, conn: &mut PgConnection, run: &RunRow, job: &Job) -> Result<bool> {
    let definition = match ctx.definitions.load(&mut *conn, run).await? {
        Ok(d) => d,
        Err(why) => {
            tracing::warn!(%why, "nothing to record");
            return Ok(false);
        }
    };
    let log = runs::events(&mut *conn, run.id).await?;
    match fold(&definition, &log) {
        Ok(state) => Ok(state.accepts_http_result(&job.node_id, job.attempt)),
        Err(e) => {
            tracing::error!(error = %e, "the run's log does not fold; nothing recorded");
            Ok(false)
        }
    }
}

/// The pre-send check, without locks: skips sending when the run is gone
/// or over, or the attempt's result is already recorded (a redelivery).
pub(crate) async fn still_wanted(ctx: &Context, job: &Job) -> Result<bool> {
    let mut conn = ctx.pool.acquire().await?;
    let Some(run) = runs::get(&mut conn, job.run_id).await? else {
        return Ok(false);
    };
    if matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled") {
        return Ok(false);
    }
    accepts(ctx, &mut conn, &run, job).await
}

/// Records `outcome` for `job`, retrying transient failures a few times.
pub(crate) async fn record(ctx: &Context, job: &Job, outcome: Outcome) -> Result<()> {
    let mut tries = 0;
    let mut proceed = ctx.options.continue_runs;
    loop {
        tries += 1;
        match record_once(ctx, job, &outcome, proceed).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < RECORD_TRIES => {
                tracing::warn!(error = %e, tries, "recording failed; trying again");
                // Leave the run's next steps to the orchestrator this time,
                // in case they were what failed.
                proceed = false;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(tries))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Records the result; with `proceed`, also takes the run's next pass
/// (fold, decide, record, enqueue) in the same transaction — exactly what
/// the orchestrator would do on the wake-up, minus a queue hop and a
/// commit. Otherwise the orchestrator is woken.
async fn record_once(ctx: &Context, job: &Job, outcome: &Outcome, proceed: bool) -> Result<()> {
    let now = Utc::now();
    let mut tx = ctx.pool.begin().await?;
    let run = runs::lock(&mut tx, job.run_id).await?;
    let recorded = match &run {
        Some(run) if accepts(ctx, &mut tx, run, job).await? => {
            runs::append(
                &mut tx,
                run.id,
                run.project_id,
                run.last_seq,
                std::slice::from_ref(&outcome.event),
                now,
            )
            .await?;
            if proceed {
                meshhook_orchestrator::advance(&mut tx, &ctx.definitions, run.id)
                    .await
                    .map_err(|e| match e {
                        meshhook_orchestrator::Error::Db(e) => e,
                        meshhook_orchestrator::Error::Sqlx(e) => Error::Sqlx(e),
                    })?;
            } else {
                queue::send(
                    &mut *tx,
                    ORCHESTRATOR_QUEUE,
                    &runs::wake_message(run.id),
                    Duration::ZERO,
                )
                .await?;
            }
            true
        }
        _ => false,
    };
    // The request went out either way: the breaker learns from it.
    if let Some((host, health)) = &outcome.breaker {
        let mut breaker = breakers::lock_or_default(&mut tx, host, ctx.options.breaker).await?;
        match health {
            Health::Up => breaker.on_success(now),
            Health::Down => breaker.on_failure(now),
        }
        breakers::save(&mut tx, host, &breaker).await?;
    }
    queue::delete(&mut *tx, EXECUTOR_QUEUE, job.msg_id).await?;
    tx.commit().await?;
    if recorded {
        tracing::info!(event = outcome.event.type_name(), "result recorded");
    } else {
        tracing::info!("attempt already answered, or run gone or finished; result dropped");
    }
    Ok(())
}

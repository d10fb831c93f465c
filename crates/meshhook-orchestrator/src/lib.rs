//! The orchestrator worker: wakes on the `orchestrator` queue (NOTIFY plus
//! a poll fallback), folds a run's events into its state, decides the next
//! steps with the pure core, and commits the new events, the executor jobs
//! and timer wake-ups, the run row's summary and the ack in one
//! transaction. Pure nodes (transform, branch, terminate) chain inside one
//! pass.
//!
//! Also the engine's library functions the API and the CLI call
//! ([`engine`]: start, test run, resume, cancel, replay check, dead
//! letters) and periodic database maintenance. Stateless: run as many
//! orchestrators as you like; the run row lock serialises work per run.

pub mod engine;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use meshhook_core::decide::{Command, decide};
use meshhook_core::definition::Definition;
use meshhook_core::event::Recorded;
use meshhook_core::state::{RunState, fold};
use meshhook_db::PgPool;
use meshhook_db::queue::{self, Message};
use meshhook_db::runs::{self, EXECUTOR_QUEUE, ORCHESTRATOR_QUEUE};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs processed at once.
    pub concurrency: usize,
    /// Messages claimed per read.
    pub batch: i32,
    /// Visibility timeout of a claimed wake-up.
    pub vt: Duration,
    /// Poll fallback when no NOTIFY arrives.
    pub poll: Duration,
    /// How often partition maintenance runs.
    pub maintenance_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch: 64,
            vt: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            maintenance_every: Duration::from_secs(3600),
        }
    }
}

/// What the worker needs.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub options: Options,
    /// Parsed definitions of published versions (immutable, so never stale).
    pub definitions: Definitions,
}

impl Context {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            options: Options::default(),
            definitions: Definitions::default(),
        }
    }
}

/// A bounded cache of parsed definitions by workflow version id. Versions
/// are immutable, so an entry never goes stale; test runs (whose
/// definition lives on the run row) bypass it.
#[derive(Clone, Default)]
pub struct Definitions {
    map: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Arc<Definition>>>>,
}

impl Definitions {
    const CAPACITY: usize = 1024;

    fn get(&self, id: Uuid) -> Option<Arc<Definition>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    fn put(&self, id: Uuid, def: Arc<Definition>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(id, def);
    }
}

/// Errors of one pass over a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] meshhook_db::Error),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// Runs the worker until `shutdown` fires; in-flight passes finish (each is
/// one short transaction), unclaimed work stays queued.
pub async fn run(ctx: Context, shutdown: CancellationToken) {
    let waker = loop {
        match queue::Waker::start(&ctx.pool).await {
            Ok(w) => break w,
            Err(e) => {
                tracing::warn!(error = %e, "orchestrator cannot LISTEN yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let maintenance = tokio::spawn(maintenance_loop(
        ctx.pool.clone(),
        ctx.options.maintenance_every,
        shutdown.clone(),
    ));
    let permits = Arc::new(Semaphore::new(ctx.options.concurrency));
    let mut tasks = JoinSet::new();
    tracing::info!("orchestrator started");
    while !shutdown.is_cancelled() {
        // Claim no more than we have room for.
        let free = permits.available_permits().min(ctx.options.batch as usize);
        if free == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tasks.join_next() => continue,
            }
        }
        let msgs =
            match queue::read(&ctx.pool, ORCHESTRATOR_QUEUE, ctx.options.vt, free as i32).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the orchestrator queue failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
        if msgs.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = waker.wait(ORCHESTRATOR_QUEUE, ctx.options.poll) => {}
            }
            continue;
        }
        for msg in msgs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let pool = ctx.pool.clone();
            let defs = ctx.definitions.clone();
            tasks.spawn(async move {
                let _permit = permit;
                if let Err(e) = handle(&pool, &defs, &msg).await {
                    // Left unacked: it reappears after its visibility timeout.
                    tracing::warn!(msg_id = msg.msg_id, error = %e, "orchestrator pass failed; will retry");
                }
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let _ = maintenance.await;
    tracing::info!("orchestrator stopped");
}

async fn maintenance_loop(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => match meshhook_db::partitions::maintain(&pool).await {
                Ok(r) if !r.created.is_empty() || !r.dropped.is_empty() => {
                    tracing::info!(created = ?r.created, dropped = ?r.dropped, "partition maintenance");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "partition maintenance failed; retrying later"),
            },
        }
    }
}

/// Processes one wake-up message.
async fn handle(pool: &PgPool, defs: &Definitions, msg: &Message) -> Result<(), Error> {
    let run_id = msg
        .message
        .get("run_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let Some(run_id) = run_id else {
        tracing::error!(
            msg_id = msg.msg_id,
            "malformed orchestrator message; archiving it"
        );
        queue::archive(pool, ORCHESTRATOR_QUEUE, msg.msg_id).await?;
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    advance(&mut tx, defs, run_id).await?;
    queue::delete(&mut *tx, ORCHESTRATOR_QUEUE, msg.msg_id).await?;
    tx.commit().await?;
    Ok(())
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Events appended.
    pub appended: usize,
    /// The run's status after the pass (None: no such run).
    pub status: Option<String>,
}

/// Fails a run that cannot be executed (unless it already ended).
async fn unrunnable(
    tx: &mut sqlx::PgConnection,
    run: &runs::RunRow,
    terminal: bool,
    message: impl AsRef<str>,
    now: chrono::DateTime<Utc>,
) -> Result<Pass, Error> {
    if !terminal {
        runs::fail_unrunnable(tx, run, message.as_ref(), now).await?;
    }
    Ok(Pass {
        appended: usize::from(!terminal),
        status: Some("failed".into()),
    })
}

/// Loads, folds, decides and records for one run inside `tx` (which holds
/// the run's row lock until it commits).
#[tracing::instrument(skip(tx, defs), fields(run_id = %run_id))]
pub async fn advance(
    tx: &mut sqlx::PgConnection,
    defs: &Definitions,
    run_id: Uuid,
) -> Result<Pass, Error> {
    let Some(run) = runs::lock(tx, run_id).await? else {
        return Ok(Pass::default());
    };
    let terminal = matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled");
    let now = Utc::now();
    let cached = match (run.definition.is_none(), run.workflow_version_id) {
        (true, Some(vid)) => defs.get(vid),
        _ => None,
    };
    let def: Arc<Definition> = match cached {
        Some(d) => d,
        None => {
            let Some(raw) = runs::definition(tx, &run).await? else {
                return unrunnable(
                    tx,
                    &run,
                    terminal,
                    "the run's workflow version no longer exists",
                    now,
                )
                .await;
            };
            match serde_json::from_value::<Definition>(raw) {
                Ok(d) => {
                    let d = Arc::new(d);
                    if let (None, Some(vid)) = (&run.definition, run.workflow_version_id) {
                        defs.put(vid, d.clone());
                    }
                    d
                }
                Err(e) => {
                    return unrunnable(
                        tx,
                        &run,
                        terminal,
                        format!("the run's definition cannot be read: {e}"),
                        now,
                    )
                    .await;
                }
            }
        }
    };
    let log = runs::events(tx, run_id).await?;
    let mut state: RunState = match fold(&def, &log) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "run log does not fold");
            return unrunnable(
                tx,
                &run,
                terminal,
                format!("the run's event log is inconsistent: {e}"),
                now,
            )
            .await;
        }
    };
    let decision = decide(&def, &state, now);
    if decision.is_empty() {
        return Ok(Pass {
            appended: 0,
            status: Some(state.status.as_str().to_owned()),
        });
    }
    let first = run.last_seq + 1;
    for (i, event) in decision.events.iter().enumerate() {
        let recorded = Recorded {
            seq: first + i as i64,
            at: now,
            event: event.clone(),
        };
        if let Err(e) = state.apply(&def, &recorded) {
            // decide produced an event fold rejects: a bug; keep the
            // transaction from committing half a decision.
            return Err(Error::Db(meshhook_db::Error::Corrupt(format!(
                "decide/fold disagree: {e}"
            ))));
        }
    }
    runs::append_with_summary(tx, &run, &decision.events, now, &state).await?;
    for command in &decision.commands {
        match command {
            Command::ScheduleHttp { not_before, .. } => {
                let delay = (*not_before - now).to_std().unwrap_or(Duration::ZERO);
                let msg = json!({ "run_id": run.id, "project_id": run.project_id, "job": command });
                queue::send(&mut *tx, EXECUTOR_QUEUE, &msg, delay).await?;
            }
            Command::WakeAt(at) => {
                let delay = (*at - now).to_std().unwrap_or(Duration::ZERO);
                queue::send(
                    &mut *tx,
                    ORCHESTRATOR_QUEUE,
                    &runs::wake_message(run.id),
                    delay,
                )
                .await?;
            }
        }
    }
    Ok(Pass {
        appended: decision.events.len(),
        status: Some(state.status.as_str().to_owned()),
    })
}

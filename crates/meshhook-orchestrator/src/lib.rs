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
use meshhook_core::event::Recorded;
use meshhook_core::state::{RunState, fold};
use meshhook_db::PgPool;
use meshhook_db::queue::{self, Message};
pub use meshhook_db::runs::Definitions;
use meshhook_db::runs::{self, EXECUTOR_QUEUE, ORCHESTRATOR_QUEUE};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Options {
    /// Passes (transactions) in flight at once.
    pub concurrency: usize,
    /// At most this many wake-ups are claimed per free pass; what one read
    /// claims is shared out over the free passes, so at low load a pass
    /// handles one run and under load each pass handles many runs with the
    /// same number of statements.
    pub batch: i32,
    /// Visibility timeout of a claimed wake-up.
    pub vt: Duration,
    /// Poll fallback when no NOTIFY arrives.
    pub poll: Duration,
    /// How often database maintenance (partitions, retention) runs.
    pub maintenance_every: Duration,
    /// How often the metrics views are refreshed
    /// (`MESHHOOK_METRICS_REFRESH_SECS`).
    pub metrics_refresh_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch: 32,
            vt: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            maintenance_every: Duration::from_secs(3600),
            metrics_refresh_every: Duration::from_secs(60),
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
    let views = tokio::spawn(views_loop(
        ctx.pool.clone(),
        ctx.options.metrics_refresh_every,
        shutdown.clone(),
    ));
    let permits = Arc::new(Semaphore::new(ctx.options.concurrency));
    let mut tasks = JoinSet::new();
    tracing::info!("orchestrator started");
    while !shutdown.is_cancelled() {
        // Claim no more than we have room for, and share what was claimed
        // out over the free permits: one transaction per share.
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tasks.join_next() => continue,
            }
        }
        let limit = i32::try_from(free.saturating_mul(ctx.options.batch.max(1) as usize))
            .unwrap_or(i32::MAX);
        let mut msgs =
            match queue::claim(&ctx.pool, ORCHESTRATOR_QUEUE, ctx.options.vt, limit).await {
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
        let share = msgs.len().div_ceil(free).max(1);
        while !msgs.is_empty() {
            let rest = msgs.split_off(share.min(msgs.len()));
            let batch = std::mem::replace(&mut msgs, rest);
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let pool = ctx.pool.clone();
            let defs = ctx.definitions.clone();
            tasks.spawn(async move {
                let _permit = permit;
                handle(&pool, &defs, batch).await;
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let _ = maintenance.await;
    let _ = views.await;
    tracing::info!("orchestrator stopped");
}

async fn maintenance_loop(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match meshhook_db::partitions::maintain(&pool).await {
            Ok(r) if !r.created.is_empty() || !r.dropped.is_empty() => {
                tracing::info!(created = ?r.created, dropped = ?r.dropped, "partition maintenance");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "partition maintenance failed; retrying later"),
        }
        let prune =
            meshhook_db::retention::prune(&pool, meshhook_db::retention::Options::default());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = prune => match r {
                Ok(r) if !r.is_empty() => tracing::info!(
                    runs = r.runs, events = r.events, deliveries = r.deliveries,
                    dead_letters = r.dead_letters, partitions = ?r.partitions, "retention pruned"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention pruning failed; retrying later"),
            },
        }
    }
}

/// Refreshes the metrics views (migration 0013) every `every`; with
/// several orchestrators, one refreshes and the others skip that tick.
async fn views_loop(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let started = std::time::Instant::now();
                match meshhook_db::metrics::refresh_views(&pool).await {
                    Ok(true) => tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "metrics views refreshed"),
                    Ok(false) => tracing::debug!("metrics views: another process is refreshing"),
                    Err(e) => tracing::warn!(error = %e, "refreshing metrics views failed; retrying later"),
                }
            }
        }
    }
}

/// Processes claimed wake-ups in one transaction; when that fails (a
/// deadlock, a conflict, a bad run), each is tried on its own so that one
/// run cannot hold the others back. Whatever still fails stays unacked and
/// reappears after its visibility timeout.
async fn handle(pool: &PgPool, defs: &Definitions, msgs: Vec<Message>) {
    let mut wakes = Vec::with_capacity(msgs.len());
    let mut malformed = Vec::new();
    for msg in &msgs {
        let run_id = msg
            .message
            .get("run_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        match run_id {
            Some(id) => wakes.push((id, msg.msg_id)),
            None => malformed.push(msg.msg_id),
        }
    }
    if !malformed.is_empty() {
        tracing::error!(msg_ids = ?malformed, "malformed orchestrator messages; archiving them");
        if let Err(e) = queue::archive_batch(pool, ORCHESTRATOR_QUEUE, &malformed).await {
            tracing::warn!(error = %e, "archiving malformed orchestrator messages failed");
        }
    }
    match pass(pool, defs, &wakes).await {
        Ok(()) => {}
        Err(e) if wakes.len() > 1 => {
            tracing::info!(runs = wakes.len(), error = %e, "batched pass failed; passing runs one by one");
            for wake in &wakes {
                if let Err(e) = pass(pool, defs, std::slice::from_ref(wake)).await {
                    tracing::warn!(run_id = %wake.0, msg_id = wake.1, error = %e, "orchestrator pass failed; will retry");
                }
            }
        }
        Err(e) => {
            tracing::warn!(run_ids = ?wakes, error = %e, "orchestrator pass failed; will retry");
        }
    }
}

/// Advances the runs of `wakes` (run id, message id) and acks their
/// messages in one transaction.
async fn pass(pool: &PgPool, defs: &Definitions, wakes: &[(Uuid, i64)]) -> Result<(), Error> {
    if wakes.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = wakes.iter().map(|w| w.0).collect();
    let acks: Vec<i64> = wakes.iter().map(|w| w.1).collect();
    let mut tx = pool.begin().await?;
    advance_many(&mut tx, defs, &ids).await?;
    queue::delete_batch(&mut *tx, ORCHESTRATOR_QUEUE, &acks).await?;
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
        meshhook_metrics::METRICS.runs_finished.inc("failed");
    }
    Ok(Pass {
        appended: usize::from(!terminal),
        status: Some("failed".into()),
    })
}

/// Loads, folds, decides and records for one run inside `tx` (which holds
/// the run's row lock until it commits).
pub async fn advance(
    tx: &mut sqlx::PgConnection,
    defs: &Definitions,
    run_id: Uuid,
) -> Result<Pass, Error> {
    let mut passes = advance_many(tx, defs, &[run_id]).await?;
    Ok(passes.remove(&run_id).unwrap_or_default())
}

/// One pass over each of `run_ids` inside `tx`, with a constant number of
/// statements however many runs there are: lock the rows (in id order),
/// read every log, fold and decide each run in memory, then one UPDATE of
/// the run rows (checking each `last_seq`), one INSERT of all new events
/// and one INSERT of all queue messages. `tx` holds the row locks until it
/// commits. Returns each existing run's pass (missing runs are absent).
#[tracing::instrument(skip_all, fields(runs = run_ids.len()))]
pub async fn advance_many(
    tx: &mut sqlx::PgConnection,
    defs: &Definitions,
    run_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Pass>, Error> {
    let rows = runs::lock_many(tx, run_ids).await?;
    // The time decisions are made at is stored as each event's `at`, which
    // PostgreSQL keeps to the microsecond: decide with exactly that time, so
    // a replay (which decides again at the recorded `at`) computes the same
    // deadlines and delay ends to the nanosecond.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let mut passes = std::collections::HashMap::with_capacity(rows.len());
    let mut ready = Vec::with_capacity(rows.len());
    for run in rows {
        let terminal = matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled");
        match defs.load(tx, &run).await? {
            Ok(def) => ready.push((run, def)),
            Err(why) => {
                let pass = unrunnable(tx, &run, terminal, why, now).await?;
                passes.insert(run.id, pass);
            }
        }
    }
    let ids: Vec<Uuid> = ready.iter().map(|(r, _)| r.id).collect();
    let mut logs = runs::events_many(tx, &ids).await?;
    let mut decided = Vec::with_capacity(ready.len());
    let mut outgoing = Vec::new();
    for (run, def) in &ready {
        let log = logs.remove(&run.id).unwrap_or_default();
        let mut state: RunState = match fold(def, &log) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(run_id = %run.id, error = %e, "run log does not fold");
                let terminal = matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled");
                let why = format!("the run's event log is inconsistent: {e}");
                let pass = unrunnable(tx, run, terminal, why, now).await?;
                passes.insert(run.id, pass);
                continue;
            }
        };
        let decision = decide(def, &state, now);
        if !decision.is_empty() {
            let first = run.last_seq + 1;
            for (i, event) in decision.events.iter().enumerate() {
                let recorded = Recorded {
                    seq: first + i as i64,
                    at: now,
                    event: event.clone(),
                };
                if let Err(e) = state.apply(def, &recorded) {
                    // decide produced an event fold rejects: a bug; keep the
                    // transaction from committing half a decision.
                    return Err(Error::Db(meshhook_db::Error::Corrupt(format!(
                        "run {}: decide/fold disagree: {e}",
                        run.id
                    ))));
                }
            }
            for command in &decision.commands {
                outgoing.push(outgoing_message(run, command, now));
            }
        }
        passes.insert(
            run.id,
            Pass {
                appended: decision.events.len(),
                status: Some(state.status.as_str().to_owned()),
            },
        );
        decided.push((run, def, decision.events, state));
    }
    let appends: Vec<runs::Append<'_>> = decided
        .iter()
        .map(|(run, _, events, state)| runs::Append { run, events, state })
        .collect();
    runs::append_many_with_summary(tx, &appends, now).await?;
    for (run, def, events, state) in &decided {
        observe(run, def, events, state, now);
    }
    queue::send_mixed(&mut *tx, &outgoing).await?;
    Ok(passes)
}

/// Feeds the process's metrics from one run's pass: the latency of each
/// step it ended (by node type) and the run's end. Observed once the pass
/// is written (a rare failed commit after that may count a step twice).
fn observe(
    run: &runs::RunRow,
    def: &meshhook_core::definition::Definition,
    events: &[meshhook_core::event::Event],
    state: &RunState,
    now: chrono::DateTime<Utc>,
) {
    use meshhook_core::event::Event;
    let metrics = &meshhook_metrics::METRICS;
    for event in events {
        let (Event::StepSucceeded { node_id, .. } | Event::StepFailed { node_id, .. }) = event
        else {
            continue;
        };
        let node_type = def.node(node_id).map_or("other", |n| n.kind.type_name());
        let started = state.step(node_id).and_then(|s| s.started_at);
        if let Some(started) = started {
            let took = (now - started).to_std().unwrap_or_default();
            metrics.step_duration.of(node_type).observe(took);
        }
    }
    let was_terminal = matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled");
    if !was_terminal && state.status.is_terminal() {
        metrics.runs_finished.inc(state.status.as_str());
    }
}

/// The queue message a command becomes.
fn outgoing_message(
    run: &runs::RunRow,
    command: &Command,
    now: chrono::DateTime<Utc>,
) -> queue::Outgoing {
    match command {
        Command::ScheduleHttp { not_before, .. } => queue::Outgoing {
            queue: EXECUTOR_QUEUE,
            message: json!({ "run_id": run.id, "project_id": run.project_id, "job": command }),
            delay: (*not_before - now).to_std().unwrap_or(Duration::ZERO),
        },
        Command::WakeAt(at) => queue::Outgoing {
            queue: ORCHESTRATOR_QUEUE,
            message: runs::wake_message(run.id),
            delay: (*at - now).to_std().unwrap_or(Duration::ZERO),
        },
    }
}

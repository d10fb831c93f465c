//! Group commit of accepted deliveries.
//!
//! Request handlers send their delivery to one batching task over a
//! bounded channel. The task collects up to [`Options::max_batch`]
//! deliveries, waiting at most [`Options::max_wait`] after the first, and
//! stores the whole batch with ONE autocommitted statement
//! ([`meshhook_db::ingest::start_webhook_runs`]): the workflows' published
//! versions, the runs (`ON CONFLICT DO NOTHING` on the dedupe index), their
//! `run_created` events and queue messages, and the delivery-log rows.
//! Deliveries that repeat an existing key take one more statement, which
//! finds the earlier run and logs the duplicate. Only after the commit does
//! each request get its answer (a oneshot). A failed batch answers every
//! member 503 and is logged once; a batch that failed on data (not on the
//! connection) is retried member by member so one bad delivery cannot sink
//! its neighbours. Up to [`Options::in_flight`] batches commit at once, so
//! collecting the next batch overlaps the previous commit.
//!
//! The batch statement sends no NOTIFY (PostgreSQL serialises the commits
//! of notifying transactions across their WAL flush, which would undo
//! group commit between concurrent batches): it defers the queue and
//! live-feed notifications, which are sent after its commit,
//! asynchronously ([`meshhook_db::notify`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use meshhook_db::PgPool;
use meshhook_db::ingest::{self, Lost, NewWebhookRun, Outcome};
use meshhook_db::notify::Pending;
use meshhook_db::webhooks::NewDelivery;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::Error;

/// Tuning of the group committer.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_batch: usize,
    pub max_wait: Duration,
    pub in_flight: usize,
    pub queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        // No timed wait: a batch is whatever queued up while the commit
        // slots were busy, so a lone delivery commits at once and a crowd
        // shares commits (measured with `meshhook bench ingest`: a 2 ms
        // wait and 8 slots gave 6,700 accepted/s, no wait and 4 slots
        // 10,300/s). Three slots: fewer, larger batches cost the database
        // less per delivery (on a 2-core machine 2 or 3 slots gave
        // 8,800–9,400/s where 4 gave 7,800–8,100/s and 6 gave 6,800/s).
        Options {
            max_batch: 256,
            max_wait: Duration::ZERO,
            in_flight: 3,
            queue: 8192,
        }
    }
}

impl Options {
    /// The defaults, overridden by `MESHHOOK_INGEST_MAX_BATCH`,
    /// `MESHHOOK_INGEST_MAX_WAIT_US` and `MESHHOOK_INGEST_IN_FLIGHT` when
    /// they are set to numbers (unparsable values are ignored with a
    /// warning).
    pub fn from_env() -> Self {
        fn var(name: &str) -> Option<u64> {
            let v = std::env::var(name).ok()?;
            match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(name, value = %v, "ignored: not a number");
                    None
                }
            }
        }
        let mut o = Options::default();
        if let Some(n) = var("MESHHOOK_INGEST_MAX_BATCH") {
            o.max_batch = usize::try_from(n).unwrap_or(o.max_batch).max(1);
        }
        if let Some(us) = var("MESHHOOK_INGEST_MAX_WAIT_US") {
            o.max_wait = Duration::from_micros(us);
        }
        if let Some(n) = var("MESHHOOK_INGEST_IN_FLIGHT") {
            o.in_flight = usize::try_from(n).unwrap_or(o.in_flight).max(1);
        }
        o
    }
}

/// Process-wide counters of the group committer (read by `meshhook bench
/// ingest`; cheap relaxed atomics).
#[derive(Debug, Default)]
pub struct Stats {
    /// Batches stored (or failed).
    pub batches: std::sync::atomic::AtomicU64,
    /// Deliveries and log rows in them.
    pub items: std::sync::atomic::AtomicU64,
    /// Microseconds spent storing them, summed over batches.
    pub store_us: std::sync::atomic::AtomicU64,
}

/// The counters of this process's group committer.
pub static STATS: Stats = Stats {
    batches: std::sync::atomic::AtomicU64::new(0),
    items: std::sync::atomic::AtomicU64::new(0),
    store_us: std::sync::atomic::AtomicU64::new(0),
};

/// A delivery to start.
pub struct Start {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub trigger: Value,
    pub key: Option<String>,
    /// Its delivery-log row, written in the same transaction (async
    /// mode); the run id, verdict and status are filled in here.
    pub delivery: Option<NewDelivery>,
}

/// A started (or deduplicated) run.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub run_id: Uuid,
    pub duplicate: bool,
}

/// Why a delivery was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotPublished,
    Unavailable,
}

impl Failure {
    pub fn verdict(self) -> &'static str {
        match self {
            Failure::NotPublished => "not_published",
            Failure::Unavailable => "unavailable",
        }
    }

    pub fn into_error(self) -> Error {
        match self {
            Failure::NotPublished => Error::conflict(
                "workflow_not_published",
                "the workflow has no published version",
            ),
            Failure::Unavailable => {
                let mut e = Error::unavailable("the delivery could not be stored; retry later");
                e.retry_after = Some(1);
                e
            }
        }
    }
}

enum Item {
    Start(Start, oneshot::Sender<Result<Started, Failure>>),
    Log(NewDelivery, oneshot::Sender<()>),
}

/// The sending side, shared by every request.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Item>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("batch::Item")
    }
}

impl Handle {
    /// Starts a delivery's run; resolves after the commit.
    pub async fn start(&self, s: Start) -> Result<Started, Failure> {
        let (tx, rx) = oneshot::channel();
        if self.tx.try_send(Item::Start(s, tx)).is_err() {
            return Err(Failure::Unavailable);
        }
        rx.await.unwrap_or(Err(Failure::Unavailable))
    }

    /// Writes a delivery-log row with the next batch; resolves after its
    /// commit (or its failure, which is logged).
    pub async fn log(&self, row: NewDelivery) {
        let (tx, rx) = oneshot::channel();
        if self.tx.try_send(Item::Log(row, tx)).is_err() {
            tracing::warn!("delivery log queue full; one delivery-log row dropped");
            return;
        }
        let _ = rx.await;
    }
}

/// Spawns the batching task on the current runtime.
pub fn spawn(pool: PgPool, opts: Options) -> Handle {
    let (tx, rx) = mpsc::channel(opts.queue);
    tokio::spawn(run(pool, opts, rx));
    Handle { tx }
}

async fn run(pool: PgPool, opts: Options, mut rx: mpsc::Receiver<Item>) {
    let slots = Arc::new(Semaphore::new(opts.in_flight.max(1)));
    loop {
        // Wait for a commit slot first, so that deliveries arriving while
        // every slot is busy join the next batch instead of waiting alone.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut items = vec![first];
        let deadline = tokio::time::Instant::now() + opts.max_wait;
        while items.len() < opts.max_batch {
            match rx.try_recv() {
                Ok(i) => items.push(i),
                // Without a wait, a batch is what queued up while every
                // commit slot was busy (natural group commit).
                Err(mpsc::error::TryRecvError::Empty) if opts.max_wait.is_zero() => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(i)) => items.push(i),
                        Ok(None) | Err(_) => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, items).await;
            drop(permit);
        });
    }
}

async fn commit(pool: &PgPool, items: Vec<Item>) {
    use std::sync::atomic::Ordering::Relaxed;
    let began = std::time::Instant::now();
    let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
    commit_items(pool, items).await;
    STATS.batches.fetch_add(1, Relaxed);
    STATS.items.fetch_add(n, Relaxed);
    STATS.store_us.fetch_add(
        u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX),
        Relaxed,
    );
}

async fn commit_items(pool: &PgPool, items: Vec<Item>) {
    let mut starts = Vec::new();
    let mut logs = Vec::new();
    // Dropped at the end: wakes every waiting logger, whatever happened.
    let mut _log_waiters = Vec::new();
    for i in items {
        match i {
            Item::Start(s, tx) => starts.push((s, tx)),
            Item::Log(row, tx) => {
                logs.push(row);
                _log_waiters.push(tx);
            }
        }
    }
    let refs: Vec<&Start> = starts.iter().map(|(s, _)| s).collect();
    match store(pool, &refs, &logs).await {
        Ok((results, pending)) => {
            for ((_, tx), r) in starts.into_iter().zip(results) {
                let _ = tx.send(r);
            }
            notify(pool, &pending).await;
        }
        Err(e) => {
            let data_error = matches!(&e, Error2::Db(sqlx::Error::Database(_)) | Error2::Data(_));
            if data_error && refs.len() + usize::from(!logs.is_empty()) > 1 {
                tracing::warn!(error = %e, size = refs.len(), "delivery batch failed; retrying one by one");
                for (s, tx) in starts {
                    let r = match store(pool, &[&s], &[]).await {
                        Ok((mut r, pending)) => {
                            notify(pool, &pending).await;
                            r.pop().unwrap_or(Err(Failure::Unavailable))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, webhook_id = %s.webhook_id, "delivery could not be stored");
                            Err(Failure::Unavailable)
                        }
                    };
                    let _ = tx.send(r);
                }
                if !logs.is_empty()
                    && let Err(e) = store(pool, &[], &logs).await
                {
                    tracing::error!(error = %e, rows = logs.len(), "delivery-log rows could not be stored");
                }
            } else {
                tracing::error!(error = %e, size = refs.len(), "delivery batch failed; answering 503");
                for (_, tx) in starts {
                    let _ = tx.send(Err(Failure::Unavailable));
                }
            }
        }
    }
}

/// Wakes the orchestrator and the live feeds once the batch is durable.
async fn notify(pool: &PgPool, pending: &Pending) {
    if let Err(e) = pending.send(pool).await {
        // Listeners poll too: a lost wake-up only delays them.
        tracing::warn!(error = %e, "could not notify after a delivery batch");
    }
}

#[derive(Debug, thiserror::Error)]
enum Error2 {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Data(String),
}

impl From<meshhook_db::Error> for Error2 {
    fn from(e: meshhook_db::Error) -> Self {
        match e {
            meshhook_db::Error::Sqlx(e) => Error2::Db(e),
            other => Error2::Data(other.to_string()),
        }
    }
}

/// One statement for the whole batch ([`ingest::start_webhook_runs`]),
/// plus one more when some deliveries repeat an existing key. Returns each
/// start's result in order, and the notifications to send now that it is
/// committed (the statement defers them: see [`meshhook_db::notify`]).
async fn store(
    pool: &PgPool,
    starts: &[&Start],
    logs: &[NewDelivery],
) -> Result<(Vec<Result<Started, Failure>>, Pending), Error2> {
    let now = Utc::now();
    let runs: Vec<NewWebhookRun<'_>> = starts
        .iter()
        .map(|s| NewWebhookRun {
            id: Uuid::now_v7(),
            project_id: s.project_id,
            workflow_id: s.workflow_id,
            webhook_id: s.webhook_id,
            trigger: &s.trigger,
            key: s.key.as_deref(),
            delivery: s.delivery.as_ref(),
        })
        .collect();
    let (outcomes, pending) = ingest::start_webhook_runs(pool, &runs, logs, now).await?;
    let mut lost = Vec::new();
    let mut results: Vec<Result<Started, Failure>> = Vec::with_capacity(runs.len());
    for ((s, run), outcome) in starts.iter().zip(&runs).zip(&outcomes) {
        results.push(match outcome {
            Outcome::Started { .. } => Ok(Started {
                run_id: run.id,
                duplicate: false,
            }),
            Outcome::NotPublished => Err(Failure::NotPublished),
            Outcome::Duplicate => {
                let Some(key) = s.key.as_deref() else {
                    return Err(Error2::Data("a run without a key was not inserted".into()));
                };
                lost.push((
                    results.len(),
                    Lost {
                        webhook_id: s.webhook_id,
                        key,
                        delivery: s.delivery.as_ref(),
                    },
                ));
                // Filled in below.
                Err(Failure::Unavailable)
            }
        });
    }
    if !lost.is_empty() {
        let (slots, lost): (Vec<usize>, Vec<Lost<'_>>) = lost.into_iter().unzip();
        let winners = ingest::resolve_duplicates(pool, &lost).await?;
        for (slot, winner) in slots.into_iter().zip(winners) {
            let Some(run_id) = winner else {
                return Err(Error2::Data("a deduplicated run is not visible".into()));
            };
            if let Some(r) = results.get_mut(slot) {
                *r = Ok(Started {
                    run_id,
                    duplicate: true,
                });
            }
        }
    }
    Ok((results, pending))
}

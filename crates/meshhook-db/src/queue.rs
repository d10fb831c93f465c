//! The durable queue: pgmq's semantics on one shared table.
//!
//! - [`send`]/[`send_batch`] insert messages, optionally delayed; a
//!   statement trigger `pg_notify`s `meshhook_queue` with the queue name at
//!   commit, which [`Waker`] turns into an immediate wake-up.
//! - [`read`] claims up to `n` visible messages with `FOR UPDATE SKIP
//!   LOCKED`, makes them invisible for `vt` and counts the read. A message
//!   read more often than its queue's `max_reads` is moved to the
//!   dead-letter table instead of being returned.
//! - [`delete`]/[`archive`] acknowledge; [`set_vt`] reschedules.
//!
//! Every function takes an executor, so an enqueue or an ack commits with
//! the caller's other writes or not at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{FromRow, PgExecutor, PgPool};
use tokio::sync::Notify;

use crate::{Error, Result};

/// The NOTIFY channel every queue insert signals (payload: queue name).
pub const CHANNEL: &str = "meshhook_queue";

/// A claimed message.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Message {
    pub msg_id: i64,
    /// How many times it has been read, this read included.
    pub read_ct: i32,
    /// Its queue's limit: a message read this often is on its last
    /// delivery (the next read moves it to the dead-letter table).
    pub max_reads: i32,
    pub enqueued_at: DateTime<Utc>,
    /// When it becomes visible again unless acked.
    pub vt: DateTime<Utc>,
    pub message: Value,
}

impl Message {
    /// Whether this is the last delivery before the dead-letter table: the
    /// earlier ones all ended without an ack (their workers crashed, stalled
    /// or kept failing).
    pub fn is_last_delivery(&self) -> bool {
        self.read_ct >= self.max_reads
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Creates a queue (idempotent; updates `max_reads` if it exists).
pub async fn create<'e>(ex: impl PgExecutor<'e>, queue: &str, max_reads: i32) -> Result<()> {
    sqlx::query(
        "INSERT INTO meshhook.queues (name, max_reads) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET max_reads = EXCLUDED.max_reads",
    )
    .bind(queue)
    .bind(max_reads)
    .execute(ex)
    .await?;
    Ok(())
}

fn map_fk(queue: &str, e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("queue_messages_queue_fkey") => {
            Error::UnknownQueue(queue.to_owned())
        }
        _ => Error::Sqlx(e),
    }
}

/// Enqueues one message, visible after `delay`. Returns its id.
pub async fn send<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    msg: &Value,
    delay: Duration,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO meshhook.queue_messages (queue, vt, message)
         VALUES ($1, clock_timestamp() + make_interval(secs => $2), $3)
         RETURNING msg_id",
    )
    .bind(queue)
    .bind(secs(delay))
    .bind(msg)
    .fetch_one(ex)
    .await
    .map_err(|e| map_fk(queue, e))
}

/// Enqueues many messages in one statement. Returns their ids in order.
pub async fn send_batch<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    msgs: &[Value],
    delay: Duration,
) -> Result<Vec<i64>> {
    if msgs.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "INSERT INTO meshhook.queue_messages (queue, vt, message)
         SELECT $1, clock_timestamp() + make_interval(secs => $2), m
         FROM unnest($3::jsonb[]) WITH ORDINALITY AS u(m, i)
         ORDER BY i
         RETURNING msg_id",
    )
    .bind(queue)
    .bind(secs(delay))
    .bind(msgs)
    .fetch_all(ex)
    .await
    .map_err(|e| map_fk(queue, e))
}

/// One message of [`send_mixed`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub queue: &'static str,
    pub message: Value,
    pub delay: Duration,
}

/// Enqueues messages for several queues, each with its own delay, in one
/// statement (the orchestrator's batched passes). Returns their ids in order.
pub async fn send_mixed<'e>(ex: impl PgExecutor<'e>, msgs: &[Outgoing]) -> Result<Vec<i64>> {
    if msgs.is_empty() {
        return Ok(Vec::new());
    }
    let queues: Vec<&str> = msgs.iter().map(|m| m.queue).collect();
    let delays: Vec<f64> = msgs.iter().map(|m| secs(m.delay)).collect();
    let bodies: Vec<&Value> = msgs.iter().map(|m| &m.message).collect();
    sqlx::query_scalar(
        "INSERT INTO meshhook.queue_messages (queue, vt, message)
         SELECT q, clock_timestamp() + make_interval(secs => d), m
         FROM unnest($1::text[], $2::float8[], $3::jsonb[]) WITH ORDINALITY AS u(q, d, m, i)
         ORDER BY i
         RETURNING msg_id",
    )
    .bind(&queues)
    .bind(&delays)
    .bind(&bodies)
    .fetch_all(ex)
    .await
    .map_err(|e| map_fk(queues.first().copied().unwrap_or_default(), e))
}

/// Claims up to `n` visible messages for `vt`. Messages already read
/// `max_reads` times are moved to the dead-letter table instead.
pub async fn read<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    vt: Duration,
    n: i32,
) -> Result<Vec<Message>> {
    read_with(ex, queue, vt, n, false).await
}

/// [`read`] as a transaction of its own that commits asynchronously
/// (`synchronous_commit = off` for it alone): a worker's claim then costs
/// no WAL flush. Losing a claim in a crash is harmless — the message just
/// becomes visible again, as if the claimant had died — so nothing is
/// traded but a possible extra delivery, which consumers handle anyway.
/// Takes the pool so it can never run inside (and relax) a caller's
/// transaction.
pub async fn claim(pool: &PgPool, queue: &str, vt: Duration, n: i32) -> Result<Vec<Message>> {
    read_with(pool, queue, vt, n, true).await
}

async fn read_with<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    vt: Duration,
    n: i32,
    async_commit: bool,
) -> Result<Vec<Message>> {
    let mut msgs: Vec<Message> = sqlx::query_as(
        "WITH lim AS (
             SELECT max_reads, CASE WHEN $4 THEN set_config('synchronous_commit', 'off', true) END AS relaxed
             FROM meshhook.queues WHERE name = $1
         ), picked AS (
             SELECT msg_id, read_ct FROM meshhook.queue_messages
             WHERE queue = $1 AND vt <= clock_timestamp()
             ORDER BY vt
             LIMIT $3
             FOR UPDATE SKIP LOCKED
         ), dead AS (
             DELETE FROM meshhook.queue_messages m
             USING picked, lim
             WHERE m.msg_id = picked.msg_id AND picked.read_ct >= lim.max_reads
             RETURNING m.msg_id, m.queue, m.read_ct, m.enqueued_at, m.message
         ), buried AS (
             INSERT INTO meshhook.queue_dead_letters (msg_id, queue, read_ct, enqueued_at, message)
             SELECT msg_id, queue, read_ct, enqueued_at, message FROM dead
         )
         UPDATE meshhook.queue_messages m
         SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
         FROM picked, lim
         WHERE m.msg_id = picked.msg_id AND picked.read_ct < lim.max_reads
           AND (lim.relaxed IS NULL OR lim.relaxed = 'off')
         RETURNING m.msg_id, m.read_ct, lim.max_reads, m.enqueued_at, m.vt, m.message",
    )
    .bind(queue)
    .bind(secs(vt))
    .bind(n)
    .bind(async_commit)
    .fetch_all(ex)
    .await?;
    msgs.sort_by_key(|m| m.msg_id);
    Ok(msgs)
}

/// Acknowledges (deletes) a message. False if it was not there.
pub async fn delete<'e>(ex: impl PgExecutor<'e>, queue: &str, msg_id: i64) -> Result<bool> {
    let r = sqlx::query("DELETE FROM meshhook.queue_messages WHERE queue = $1 AND msg_id = $2")
        .bind(queue)
        .bind(msg_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Acknowledges many messages. Returns how many were deleted.
pub async fn delete_batch<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    msg_ids: &[i64],
) -> Result<u64> {
    let r =
        sqlx::query("DELETE FROM meshhook.queue_messages WHERE queue = $1 AND msg_id = ANY($2)")
            .bind(queue)
            .bind(msg_ids)
            .execute(ex)
            .await?;
    Ok(r.rows_affected())
}

/// Acknowledges a message by moving it to the archive. False if it was not there.
pub async fn archive<'e>(ex: impl PgExecutor<'e>, queue: &str, msg_id: i64) -> Result<bool> {
    Ok(archive_batch(ex, queue, &[msg_id]).await? == 1)
}

/// Archives many messages. Returns how many were moved.
pub async fn archive_batch<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    msg_ids: &[i64],
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "WITH moved AS (
             DELETE FROM meshhook.queue_messages WHERE queue = $1 AND msg_id = ANY($2)
             RETURNING msg_id, queue, read_ct, enqueued_at, message
         ), ins AS (
             INSERT INTO meshhook.queue_archive (msg_id, queue, read_ct, enqueued_at, message)
             SELECT msg_id, queue, read_ct, enqueued_at, message FROM moved
             RETURNING 1
         )
         SELECT count(*) FROM ins",
    )
    .bind(queue)
    .bind(msg_ids)
    .fetch_one(ex)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Makes a message visible again after `delay` from now. False if it was not there.
pub async fn set_vt<'e>(
    ex: impl PgExecutor<'e>,
    queue: &str,
    msg_id: i64,
    delay: Duration,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE meshhook.queue_messages SET vt = clock_timestamp() + make_interval(secs => $3)
         WHERE queue = $1 AND msg_id = $2",
    )
    .bind(queue)
    .bind(msg_id)
    .bind(secs(delay))
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Messages in the queue, visible or not.
pub async fn depth<'e>(ex: impl PgExecutor<'e>, queue: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM meshhook.queue_messages WHERE queue = $1")
            .bind(queue)
            .fetch_one(ex)
            .await?,
    )
}

/// Age of the oldest message in the queue, if any.
pub async fn oldest_age<'e>(ex: impl PgExecutor<'e>, queue: &str) -> Result<Option<Duration>> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM clock_timestamp() - min(enqueued_at))::float8
         FROM meshhook.queue_messages WHERE queue = $1",
    )
    .bind(queue)
    .fetch_one(ex)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// One queue's gauges, for `/metrics`.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct Metrics {
    pub queue: String,
    /// All messages in the queue.
    pub depth: i64,
    /// Messages visible now (ready to be read).
    pub visible: i64,
    /// Seconds since the oldest message was enqueued (0 when empty).
    pub oldest_age_s: f64,
    /// Messages in the dead-letter table.
    pub dead: i64,
}

/// Gauges for every queue.
pub async fn metrics<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<Metrics>> {
    Ok(sqlx::query_as(
        "SELECT q.name AS queue,
                coalesce(m.depth, 0) AS depth,
                coalesce(m.visible, 0) AS visible,
                coalesce(m.oldest_age_s, 0) AS oldest_age_s,
                (SELECT count(*) FROM meshhook.queue_dead_letters d WHERE d.queue = q.name) AS dead
         FROM meshhook.queues q
         LEFT JOIN LATERAL (
             SELECT count(*) AS depth,
                    count(*) FILTER (WHERE vt <= clock_timestamp()) AS visible,
                    extract(epoch FROM clock_timestamp() - min(enqueued_at))::float8 AS oldest_age_s
             FROM meshhook.queue_messages WHERE queue = q.name
         ) m ON true
         ORDER BY q.name",
    )
    .fetch_all(ex)
    .await?)
}

/// When the next message of `queue` becomes visible, if any is waiting.
pub async fn next_visible_in<'e>(ex: impl PgExecutor<'e>, queue: &str) -> Result<Option<Duration>> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT greatest(extract(epoch FROM min(vt) - clock_timestamp()), 0)::float8
         FROM meshhook.queue_messages WHERE queue = $1",
    )
    .bind(queue)
    .fetch_one(ex)
    .await?;
    Ok(secs.map(Duration::from_secs_f64))
}

/// Turns `meshhook_queue` notifications into per-queue wake-ups.
///
/// One LISTEN connection per process; workers call [`Waker::wait`], which
/// returns when a message was sent to their queue or the poll interval
/// passed, whichever is first. The poll stays as fallback for delayed
/// messages and for notifications lost while the listener reconnects
/// (after a reconnect every waiter is woken).
#[derive(Clone, Default)]
pub struct Waker {
    queues: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Waker {
    /// Starts listening on `pool`'s database. The listener task ends when
    /// the returned waker and all its clones are dropped... or never, for a
    /// process-wide waker; it reconnects on its own.
    pub async fn start(pool: &PgPool) -> Result<Self> {
        // Its own one-connection pool: the LISTEN connection is held for
        // the life of the process and must not keep `pool.close()` waiting.
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*pool.connect_options()).clone())
            .await?;
        let mut listener = PgListener::connect_with(&own).await?;
        listener.listen(CHANNEL).await?;
        let waker = Self::default();
        let queues = Arc::downgrade(&waker.queues);
        tokio::spawn(async move {
            loop {
                let note = listener.try_recv().await;
                let Some(queues) = queues.upgrade() else {
                    return;
                };
                let notifies: Vec<Arc<Notify>> = {
                    let map = queues.lock().unwrap_or_else(|p| p.into_inner());
                    match &note {
                        Ok(Some(n)) => map.get(n.payload()).cloned().into_iter().collect(),
                        // Reconnected (notifications may have been lost) or failed: wake all.
                        Ok(None) | Err(_) => map.values().cloned().collect(),
                    }
                };
                for n in notifies {
                    n.notify_waiters();
                    n.notify_one();
                }
                if let Err(e) = note {
                    tracing::warn!(error = %e, "queue listener failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Ok(waker)
    }

    fn notify_for(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(queue.to_owned()).or_default().clone()
    }

    /// Waits until `queue` is signalled or `timeout` passes.
    pub async fn wait(&self, queue: &str, timeout: Duration) {
        let notify = self.notify_for(queue);
        let _ = tokio::time::timeout(timeout, notify.notified()).await;
    }

    /// Wakes the waiters of `queue` in this process (e.g. after a local send).
    pub fn wake(&self, queue: &str) {
        let n = self.notify_for(queue);
        n.notify_waiters();
        n.notify_one();
    }
}

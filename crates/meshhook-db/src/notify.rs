//! Notifications sent after a commit instead of from triggers inside it.
//!
//! PostgreSQL serialises the commits of transactions that NOTIFY (a
//! database-wide lock from pre-commit until the commit record is flushed),
//! so concurrent writers that notify cannot share WAL flushes. A hot
//! writer calls [`defer`] in its transaction — the queue and event
//! triggers then stay silent (migration 0011) — collects what they would
//! have said in [`Pending`], and after its commit calls [`Pending::send`],
//! which notifies from a transaction of its own that commits
//! asynchronously: holding the lock for microseconds, not an fsync.
//!
//! Notifications only wake listeners early; every listener also polls.
//! Losing one (a crash between the two commits) delays a wake-up and
//! loses nothing.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;

/// Silences the notification triggers for the rest of the transaction.
pub async fn defer(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT set_config('meshhook.notify', 'deferred', true)")
        .execute(conn)
        .await?;
    Ok(())
}

/// The notifications a deferred transaction owes.
#[derive(Debug, Default, Clone)]
pub struct Pending {
    channels: Vec<&'static str>,
    payloads: Vec<String>,
}

impl Pending {
    /// A message was enqueued on `queue` (one notification per queue).
    pub fn queue(&mut self, queue: &str) {
        let already = self
            .channels
            .iter()
            .zip(&self.payloads)
            .any(|(c, p)| *c == crate::queue::CHANNEL && p == queue);
        if !already {
            self.channels.push(crate::queue::CHANNEL);
            self.payloads.push(queue.to_owned());
        }
    }

    /// Events `first..=last` of `run_id` were appended.
    pub fn events(&mut self, run_id: Uuid, project_id: Uuid, first: i64, last: i64) {
        self.channels.push(crate::live::CHANNEL);
        self.payloads
            .push(format!("{run_id} {project_id} {first} {last}"));
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Sends them (call after the writer's commit). One statement, one
    /// asynchronous commit.
    pub async fn send(&self, pool: &PgPool) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "SELECT set_config('synchronous_commit', 'off', true), count(pg_notify(u.c, u.p))
             FROM unnest($1::text[], $2::text[]) AS u(c, p)",
        )
        .bind(&self.channels)
        .bind(&self.payloads)
        .execute(pool)
        .await?;
        Ok(())
    }
}

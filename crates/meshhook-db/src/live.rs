//! The live feed's source: appended events, announced by the
//! `meshhook_events` notification (migration 0007: ids only, one per run and
//! statement) and fanned out in-process over a broadcast channel.
//!
//! Subscribers never trust a notification for data: they read the rows by
//! seq ([`crate::run_views::events`]), so a lost or lagged notification
//! costs latency, never an event. [`Notice::Resync`] tells them to refetch
//! (the listener reconnected, or they lagged behind).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::Result;

/// The NOTIFY channel of appended events.
pub const CHANNEL: &str = "meshhook_events";

/// What a subscriber hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Events `first_seq..=last_seq` of `run_id` were committed.
    Appended {
        run_id: Uuid,
        project_id: Uuid,
        first_seq: i64,
        last_seq: i64,
    },
    /// Notifications may have been missed: refetch from where you are.
    Resync,
}

impl Notice {
    /// Parses a `"<run_id> <project_id> <first> <last>"` payload.
    pub fn parse(payload: &str) -> Option<Notice> {
        let mut parts = payload.split(' ');
        let run_id = Uuid::parse_str(parts.next()?).ok()?;
        let project_id = Uuid::parse_str(parts.next()?).ok()?;
        let first_seq = parts.next()?.parse().ok()?;
        let last_seq = parts.next()?.parse().ok()?;
        Some(Notice::Appended {
            run_id,
            project_id,
            first_seq,
            last_seq,
        })
    }
}

/// The process's one listener on [`CHANNEL`]; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Notice>,
}

impl Feed {
    /// How many notices a subscriber may fall behind before it is told to
    /// resync.
    const CAPACITY: usize = 4096;

    /// Starts listening (on a one-connection pool of its own, reconnecting
    /// by itself). The task ends when every clone of the feed is dropped.
    pub async fn start(pool: &PgPool) -> Result<Self> {
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*pool.connect_options()).clone())
            .await?;
        let mut listener = PgListener::connect_with(&own).await?;
        listener.listen(CHANNEL).await?;
        let (tx, _) = broadcast::channel(Self::CAPACITY);
        let weak = tx.downgrade();
        tokio::spawn(async move {
            loop {
                let note = listener.try_recv().await;
                let Some(tx) = weak.upgrade() else {
                    return;
                };
                let notice = match &note {
                    Ok(Some(n)) => Notice::parse(n.payload()),
                    Ok(None) | Err(_) => Some(Notice::Resync),
                };
                if let Some(notice) = notice {
                    // No subscribers is fine.
                    let _ = tx.send(notice);
                }
                if let Err(e) = note {
                    tracing::warn!(error = %e, "event listener failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Ok(Feed { tx })
    }

    /// A new subscription; subscribe before reading the backlog so nothing
    /// committed in between is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}

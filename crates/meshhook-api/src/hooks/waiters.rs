//! Waiting for runs to finish without polling: one LISTEN connection per
//! process on `meshhook_run_finished` (migration 0008) wakes waiters by
//! run id. A waiter registers before it reads the run's status, so a
//! finish between the read and the wait is never missed; a lost listener
//! connection wakes every waiter to read again.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use meshhook_db::PgPool;
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The channel migration 0008 notifies.
pub const CHANNEL: &str = "meshhook_run_finished";

type Map = HashMap<Uuid, Vec<oneshot::Sender<()>>>;

/// The registry of waiters, and its listener task (started on first use).
#[derive(Debug, Default)]
pub struct Waiters {
    map: std::sync::Arc<Mutex<Map>>,
    started: OnceLock<()>,
}

fn wake_all(map: &Mutex<Map>) {
    let drained: Vec<_> = map
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    for (_, senders) in drained {
        for s in senders {
            let _ = s.send(());
        }
    }
}

async fn listen(pool: PgPool, map: std::sync::Arc<Mutex<Map>>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "run-finished listener cannot connect; retrying");
                wake_all(&map);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "run-finished listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything that finished while we were not listening.
        wake_all(&map);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(id) = n.payload().parse::<Uuid>() {
                        let senders = map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                        for s in senders.into_iter().flatten() {
                            let _ = s.send(());
                        }
                    }
                }
                Ok(None) => {
                    // The connection dropped (sqlx reconnects on the next
                    // call); notifications may have been lost meanwhile.
                    wake_all(&map);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "run-finished listener failed; reconnecting");
                    wake_all(&map);
                    break;
                }
            }
        }
    }
}

/// A finished run: (status, output, error).
pub type Outcome = (String, Option<Value>, Option<Value>);

impl Waiters {
    fn register(&self, pool: &PgPool, run_id: Uuid) -> oneshot::Receiver<()> {
        self.started.get_or_init(|| {
            tokio::spawn(listen(pool.clone(), self.map.clone()));
        });
        let (tx, rx) = oneshot::channel();
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run_id)
            .or_default()
            .push(tx);
        rx
    }

    fn unregister(&self, run_id: Uuid) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get_mut(&run_id) {
            v.retain(|s| !s.is_closed());
            if v.is_empty() {
                map.remove(&run_id);
            }
        }
    }

    /// Waits up to `timeout` for `run_id` to finish; `None` on timeout.
    pub async fn wait(&self, pool: &PgPool, run_id: Uuid, timeout: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rx = self.register(pool, run_id);
            if let Some(done) = finished(pool, run_id).await {
                self.unregister(run_id);
                return Some(done);
            }
            let woke = tokio::time::timeout_at(deadline, rx).await;
            if woke.is_err() {
                self.unregister(run_id);
                // One last look: the notification and the deadline may race.
                return finished(pool, run_id).await;
            }
        }
    }
}

async fn finished(pool: &PgPool, run_id: Uuid) -> Option<Outcome> {
    let mut conn = pool.acquire().await.ok()?;
    let (status, output, error) = meshhook_db::webhooks::run_outcome(&mut conn, run_id)
        .await
        .ok()??;
    matches!(status.as_str(), "succeeded" | "failed" | "cancelled")
        .then_some((status, output, error))
}

//! The HTTP executor worker: claims `executor` jobs, performs the HTTP
//! call (SSRF guard after DNS resolution, secrets resolved at send time,
//! per-host circuit breaker shared through PostgreSQL), and records the
//! result, the orchestrator wake-up and the ack in one transaction.
//! Stateless: run as many as you like.
//!
//! Guarantees (each is tested in `tests/it`):
//! - At most one result is ever recorded per `(run, node, attempt)`: the
//!   recording transaction locks the run and folds its log, and records only
//!   if the attempt is still the one in flight. A job whose result did not
//!   commit reappears after its visibility timeout and is sent again with
//!   the same `Idempotency-Key`.
//! - Secret values exist only in memory between resolution and sending:
//!   never in events, logs or error texts (values echoed back by the remote
//!   are scrubbed from what is recorded).
//! - No request reaches a loopback, private, link-local, shared, multicast
//!   or otherwise internal address unless `MESHHOOK_EGRESS_ALLOWLIST` allows
//!   it; such attempts fail with kind `ssrf` and are not retried.
//!
//! This crate does HTTP and calls `meshhook-db` for all SQL; it has no SQL
//! of its own beyond what that crate exposes.

use std::sync::Arc;
use std::time::Duration;

use meshhook_core::breaker;
use meshhook_db::PgPool;
use meshhook_db::vault::Keyring;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub mod alerts;
pub mod egress;
mod job;
mod record;
mod send;

pub use egress::Egress;
pub use job::JobMessage;

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Tuning. Defaults: 32 jobs at once, 1 MiB of response body, breaker
/// 5 failures / 60 s / 1 probe, 1 s poll, 30 s drain, 45 s claims (the
/// default 30 s request timeout plus 15 s to record).
#[derive(Debug, Clone)]
pub struct Options {
    /// Jobs in flight at once.
    pub concurrency: usize,
    /// Response bodies are cut (and marked `truncated`) past this size.
    pub max_response_bytes: usize,
    /// Circuit breaker tuning (per target host).
    pub breaker: breaker::Policy,
    /// Poll interval, the fallback for missed notifications and delayed jobs.
    pub poll: Duration,
    /// On shutdown, how long in-flight jobs may take to finish; jobs still
    /// running then are abandoned and reappear after their visibility timeout.
    pub drain_timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
    /// How often alert rules are evaluated and due alerts sent.
    pub alerts_every: Duration,
    /// How long a claimed job stays invisible to other workers (the
    /// visibility timeout of `read`); a job whose request timeout plus
    /// `record_slack` is longer extends its own claim before sending.
    pub claim_vt: Duration,
    /// Time allowed on top of a request's timeout for secrets, the breaker
    /// and recording.
    pub record_slack: Duration,
    /// Take the run's next orchestrator pass in the transaction that
    /// records a result, instead of waking the orchestrator for it (one
    /// queue hop and one commit less per HTTP step).
    pub continue_runs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 32,
            max_response_bytes: 1024 * 1024,
            breaker: breaker::Policy::default(),
            poll: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            user_agent: concat!("MeshHook/", env!("CARGO_PKG_VERSION")).to_owned(),
            alerts_every: alerts::EVERY,
            claim_vt: Duration::from_secs(45),
            record_slack: Duration::from_secs(15),
            continue_runs: true,
        }
    }
}

/// What the worker needs. Build it once at start-up with [`Context::new`].
#[derive(Clone)]
pub struct Context {
    /// The database (a service role: the worker reads every project's runs).
    pub pool: PgPool,
    /// Opens secrets at send time.
    pub keyring: Arc<Keyring>,
    /// The SSRF guard.
    pub egress: Arc<Egress>,
    /// Tuning.
    pub options: Options,
    /// Parsed definitions of published versions (immutable).
    pub definitions: meshhook_db::runs::Definitions,
    client: reqwest::Client,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("keyring", &self.keyring)
            .field("egress", &self.egress)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Builds the context and its HTTP client (rustls, no proxies, at most
    /// 5 redirects, DNS answers filtered by `egress`).
    pub fn new(
        pool: PgPool,
        keyring: Arc<Keyring>,
        egress: Arc<Egress>,
        options: Options,
    ) -> Result<Self, Error> {
        let client =
            send::client(&egress, &options.user_agent).map_err(|e| Error::Client(e.to_string()))?;
        Ok(Context {
            pool,
            keyring,
            egress,
            options,
            definitions: meshhook_db::runs::Definitions::default(),
            client,
        })
    }
}

/// Runs the worker until `shutdown` fires: claims jobs as they arrive
/// (notifications, with a poll as fallback), runs up to
/// `options.concurrency` at once, and on shutdown stops claiming and lets
/// in-flight jobs finish within `options.drain_timeout`.
pub async fn run(ctx: Context, shutdown: CancellationToken) {
    let waker = match meshhook_db::queue::Waker::start(&ctx.pool).await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for queue notifications; polling only");
            None
        }
    };
    let alerting = tokio::spawn(alerts::run(
        ctx.clone(),
        ctx.options.alerts_every,
        shutdown.clone(),
    ));
    let concurrency = ctx.options.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks: JoinSet<()> = JoinSet::new();
    tracing::info!(concurrency, "executor started");

    while !shutdown.is_cancelled() {
        while let Some(done) = tasks.try_join_next() {
            log_join(done);
        }
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next() => log_join(done),
            }
            continue;
        }
        let n = i32::try_from(free).unwrap_or(i32::MAX);
        match meshhook_db::queue::claim(
            &ctx.pool,
            meshhook_db::runs::EXECUTOR_QUEUE,
            ctx.options.claim_vt,
            n,
        )
        .await
        {
            Ok(msgs) if !msgs.is_empty() => {
                for msg in msgs {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    let ctx = ctx.clone();
                    tasks.spawn(async move {
                        job::handle(&ctx, msg).await;
                        drop(permit);
                    });
                }
            }
            Ok(_) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wait(waker.as_ref(), ctx.options.poll) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming executor jobs failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ctx.options.poll) => {}
                }
            }
        }
    }

    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "executor draining");
        let drained = tokio::time::timeout(ctx.options.drain_timeout, async {
            while let Some(done) = tasks.join_next().await {
                log_join(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = tasks.len(),
                "drain deadline passed; abandoned jobs reappear after their visibility timeout"
            );
            tasks.abort_all();
        }
    }
    let _ = alerting.await;
    tracing::info!("executor stopped");
}

async fn wait(waker: Option<&meshhook_db::queue::Waker>, poll: Duration) {
    match waker {
        Some(w) => w.wait(meshhook_db::runs::EXECUTOR_QUEUE, poll).await,
        None => tokio::time::sleep(poll).await,
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "executor job panicked; it reappears after its visibility timeout");
    }
}

//! One executor job: from a claimed queue message to a recorded result.

use std::time::Duration;

use chrono::{DateTime, Utc};
use meshhook_core::Command;
use meshhook_core::definition::RetryPolicy;
use meshhook_core::event::HttpRequest;
use meshhook_db::queue::{self, Message};
use meshhook_db::runs::EXECUTOR_QUEUE;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{Context, record, send};

/// The message on the `executor` queue, as the orchestrator sends it:
/// `{"run_id", "project_id", "job": <Command::ScheduleHttp>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    /// The run.
    pub run_id: Uuid,
    /// Its project (whose secrets the request may use).
    pub project_id: Uuid,
    /// A [`Command::ScheduleHttp`].
    pub job: Command,
}

/// A decoded job.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub msg_id: i64,
    /// Deliveries of this message so far, this one included.
    pub deliveries: i32,
    /// Whether it is the queue's last delivery of it.
    pub last_delivery: bool,
    pub run_id: Uuid,
    pub project_id: Uuid,
    pub node_id: String,
    pub attempt: u32,
    pub request: HttpRequest,
    pub idempotency_key: String,
    pub retry: RetryPolicy,
    pub not_before: DateTime<Utc>,
}

impl Job {
    fn decode(msg: &Message) -> Result<Self, String> {
        let m: JobMessage =
            serde_json::from_value(msg.message.clone()).map_err(|e| e.to_string())?;
        match m.job {
            Command::ScheduleHttp {
                node_id,
                attempt,
                request,
                idempotency_key,
                retry,
                not_before,
            } => Ok(Job {
                msg_id: msg.msg_id,
                deliveries: msg.read_ct,
                last_delivery: msg.is_last_delivery(),
                run_id: m.run_id,
                project_id: m.project_id,
                node_id,
                attempt,
                request,
                idempotency_key,
                retry,
                not_before,
            }),
            other => Err(format!("not an HTTP job: {other:?}")),
        }
    }
}

/// Handles one claimed message. Errors are logged here, once; a job that
/// fails before its result commits reappears after its visibility timeout.
pub(crate) async fn handle(ctx: &Context, msg: Message) {
    let job = match Job::decode(&msg) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(msg_id = msg.msg_id, error = %e, "undecodable executor job; archived");
            if let Err(e) = queue::archive(&ctx.pool, EXECUTOR_QUEUE, msg.msg_id).await {
                tracing::warn!(msg_id = msg.msg_id, error = %e, "archiving an undecodable job failed");
            }
            return;
        }
    };
    let span = tracing::info_span!(
        "http_job",
        run_id = %job.run_id,
        project_id = %job.project_id,
        node_id = %job.node_id,
        attempt = job.attempt,
        msg_id = job.msg_id,
    );
    async {
        if let Err(e) = process(ctx, &job).await {
            tracing::warn!(error = %e, "executor job failed; it reappears after its visibility timeout");
        }
    }
    .instrument(span)
    .await;
}

async fn process(ctx: &Context, job: &Job) -> Result<(), meshhook_db::Error> {
    let now = Utc::now();
    if now < job.not_before {
        let early = (job.not_before - now).to_std().unwrap_or_default();
        tracing::debug!(
            early_ms = early.as_millis() as u64,
            "job is early; postponed"
        );
        queue::set_vt(&ctx.pool, EXECUTOR_QUEUE, job.msg_id, early).await?;
        return Ok(());
    }
    // Skip the request altogether when its result is already recorded (a
    // duplicate or late redelivery) or the run is gone or over. The
    // recording transaction checks again under the run lock.
    if !record::still_wanted(ctx, job).await? {
        tracing::info!("attempt already answered, or run gone or finished; job dropped");
        queue::delete(&ctx.pool, EXECUTOR_QUEUE, job.msg_id).await?;
        return Ok(());
    }
    if job.last_delivery && job.deliveries > 1 {
        // Every earlier delivery ended without a recorded result: the job
        // crashes or stalls its worker. Fail the attempt (not retryable)
        // instead of letting it go to the dead-letter table and leaving the
        // run waiting for its timeout.
        tracing::warn!(
            deliveries = job.deliveries,
            "job abandoned: no delivery of it ever recorded a result"
        );
        let outcome = send::abandoned(job);
        return record::record(ctx, job, outcome).await;
    }
    let needed =
        Duration::from_millis(job.request.timeout_ms).saturating_add(ctx.options.record_slack);
    if needed > ctx.options.claim_vt {
        queue::set_vt(&ctx.pool, EXECUTOR_QUEUE, job.msg_id, needed).await?;
    }
    let outcome = send::perform(ctx, job).await?;
    record::record(ctx, job, outcome).await
}

//! Runs: the filtered, cursor-paginated list; a run's detail with its
//! steps (the fold of its events); its events; resume from a step; cancel;
//! the replay check; the dead-letter view.
//!
//! Reads (list, detail, events, replay check, dead letters) run entirely
//! under RLS. Resume and cancel are authorised under RLS (editors) and
//! then call the engine with the connection's own role in the same
//! transaction, because they enqueue orchestrator wake-ups.
//!
//! Everything returned about a run's data (trigger, outputs, errors, event
//! data, failure reasons, replay mismatches) goes through the project's
//! PII redaction rules first ([`super::redaction`]); the engine's own
//! reads are never redacted.
//!
//! Pagination is keyset on `(created_at, id)`, newest first, with an
//! opaque cursor: stable under concurrent inserts (no duplicates, no
//! skipped rows older than the cursor).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use meshhook_core::definition::Definition;
use meshhook_core::event::Recorded;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Json, Path, Query};
use crate::v1::workflows::RunCreated;
use meshhook_db::run_views;

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(resume))
        .routes(routes!(cancel))
        .routes(routes!(replay))
        .routes(routes!(dead_letters))
}

const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// `queued|running|waiting|succeeded|failed|cancelled`
    pub status: Option<String>,
    pub workflow_id: Option<Uuid>,
    /// Runs created at or after this time (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Runs created before this time (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// `null` for test runs of a draft.
    pub version: Option<i32>,
    pub status: String,
    /// `webhook|test|resume|manual|rerun`
    pub trigger_kind: String,
    pub parent_run_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RunCursor {
    t: DateTime<Utc>,
    id: Uuid,
}

/// Runs of a project, newest first (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/runs", tag = "runs",
    params(("pid" = Uuid, Path, description = "project id"), RunListQuery),
    responses((status = 200, body = RunPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_runs(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Query(q): Query<RunListQuery>,
) -> Result<Json<RunPage>, Error> {
    if let Some(st) = &q.status
        && !STATUSES.contains(&st.as_str())
    {
        return Err(Error::bad_request(
            "invalid_query",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let limit = super::page_limit(q.limit, 50, 200);
    let after = q
        .cursor
        .as_deref()
        .map(super::cursor::decode::<RunCursor>)
        .transpose()?
        .map(|c| (c.t, c.id));
    let filter = run_views::Filter {
        status: q.status,
        workflow_id: q.workflow_id,
        created_after: q.created_after,
        created_before: q.created_before,
        after,
        limit: limit + 1,
    };
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let mut rows = run_views::list(s.conn(), pid, &filter).await?;
    let redactor = super::redaction::redactor(&ctx, s.conn(), pid).await?;
    s.commit().await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|r| {
            super::cursor::encode(&RunCursor {
                t: r.created_at,
                id: r.id,
            })
        })
    } else {
        None
    };
    Ok(Json(RunPage {
        items: rows
            .into_iter()
            .map(|r| RunSummary {
                id: r.id,
                workflow_id: r.workflow_id,
                version: r.version,
                status: r.status,
                trigger_kind: r.trigger_kind,
                parent_run_id: r.parent_run_id,
                error: r.error.map(|mut e| {
                    redactor.redact_in_place(&mut e);
                    e
                }),
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: r.finished_at,
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepOut {
    pub node_id: String,
    /// `pending|running|retrying|succeeded|failed|skipped`
    pub status: String,
    /// HTTP attempts made.
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub version: Option<i32>,
    pub status: String,
    pub trigger_kind: String,
    /// `{body, headers, query}`.
    #[schema(value_type = Object)]
    pub trigger: Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub parent_run_id: Option<Uuid>,
    pub resumed_from_node: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// One per node of the definition, in definition order.
    pub steps: Vec<StepOut>,
    /// Set when the stored log does not fold (steps are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_error: Option<String>,
}

/// Loads the run's definition and log and folds them into steps.
async fn steps(s: &mut Session, run_id: Uuid) -> Result<(Vec<StepOut>, Option<String>), Error> {
    let Some(row) = meshhook_db::runs::get(s.conn(), run_id).await? else {
        return Err(Error::not_found("run"));
    };
    let Some(raw) = meshhook_db::runs::definition(s.conn(), &row).await? else {
        return Ok((
            Vec::new(),
            Some("the run's workflow version no longer exists".into()),
        ));
    };
    let def: Definition = match serde_json::from_value(raw) {
        Ok(d) => d,
        Err(e) => {
            return Ok((
                Vec::new(),
                Some(format!("the definition does not parse: {e}")),
            ));
        }
    };
    let log: Vec<Recorded> = meshhook_db::runs::events(s.conn(), run_id).await?;
    let state = match meshhook_core::state::fold(&def, &log) {
        Ok(st) => st,
        Err(e) => return Ok((Vec::new(), Some(e.to_string()))),
    };
    let steps = def
        .nodes
        .iter()
        .filter_map(|n| {
            state.steps.get(&n.id).map(|st| StepOut {
                node_id: n.id.clone(),
                status: st.status.as_str().to_owned(),
                attempts: st.attempts,
                started_at: st.started_at,
                finished_at: st.finished_at,
                output: st.output.clone(),
                error: st.error.clone(),
            })
        })
        .collect();
    Ok((steps, None))
}

/// One run with its steps (members).
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = Uuid, Path, description = "run id")),
    responses((status = 200, body = RunOut), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<RunOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let mut run = run_views::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("run"))?;
    s.require(run.project_id, Role::Viewer, "run").await?;
    let (mut steps, fold_error) = steps(&mut s, id).await?;
    let redactor = super::redaction::redactor(&ctx, s.conn(), run.project_id).await?;
    s.commit().await?;
    let r = &*redactor;
    if !r.is_noop() {
        r.redact_in_place(&mut run.trigger);
        run.output.iter_mut().for_each(|v| r.redact_in_place(v));
        run.error.iter_mut().for_each(|v| r.redact_in_place(v));
        for step in &mut steps {
            step.output.iter_mut().for_each(|v| r.redact_in_place(v));
            step.error.iter_mut().for_each(|e| r.redact_string(e));
        }
    }
    Ok(Json(RunOut {
        id: run.id,
        project_id: run.project_id,
        workflow_id: run.workflow_id,
        version: run.version,
        status: run.status,
        trigger_kind: run.trigger_kind,
        trigger: run.trigger,
        output: run.output,
        error: run.error,
        parent_run_id: run.parent_run_id,
        resumed_from_node: run.resumed_from_node,
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        steps,
        fold_error,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with `seq` greater than this (default 0).
    pub after: Option<i64>,
    /// At most this many, 1 to 5000 (default 1000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's fields (secrets are never recorded: requests keep
    /// `{{ secrets.NAME }}` symbolic and echoed values are scrubbed).
    #[schema(value_type = Object)]
    pub data: Value,
    pub at: DateTime<Utc>,
}

/// The run's event log, in order (members).
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs",
    params(("id" = Uuid, Path, description = "run id"), EventsQuery),
    responses((status = 200, body = Vec<EventOut>), (status = 404, body = ErrorBody)))]
async fn run_events(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<EventOut>>, Error> {
    let limit = super::page_limit(q.limit, 1000, 5000);
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = run_views::project_of(s.conn(), id).await?;
    let (pid, _) = s.require_on(project, Role::Viewer, "run").await?;
    let rows = run_views::events(s.conn(), id, q.after.unwrap_or(0), limit).await?;
    let redactor = super::redaction::redactor(&ctx, s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(
        rows.into_iter()
            .map(|mut e| {
                redactor.redact_in_place(&mut e.data);
                EventOut {
                    seq: e.seq,
                    kind: e.kind,
                    data: e.data,
                    at: e.at,
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeIn {
    /// The step to re-execute from; the steps before it keep their recorded results.
    pub from_node: String,
}

/// Resumes a run from a step: a new run of the same version with
/// `parent_run_id` set (editors).
#[utoipa::path(post, path = "/api/v1/runs/{id}/resume", tag = "runs",
    params(("id" = Uuid, Path, description = "run id")),
    request_body = ResumeIn,
    responses(
        (status = 201, body = RunCreated),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`cannot_resume`", body = ErrorBody),
    ))]
async fn resume(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Json(input): Json<ResumeIn>,
) -> Result<(StatusCode, Json<RunCreated>), Error> {
    if input.from_node.is_empty() || input.from_node.len() > 64 {
        return Err(Error::invalid("/from_node", "must be a node id"));
    }
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = run_views::project_of(s.conn(), id).await?;
    let (pid, _) = s.require_on(project, Role::Editor, "run").await?;
    s.elevate().await?;
    let run_id =
        meshhook_orchestrator::engine::resume(s.conn(), id, &input.from_node, Utc::now()).await?;
    s.audit(
        Some(pid),
        "run.resume",
        Some(("run", id.to_string())),
        json!({ "from_node": input.from_node, "new_run_id": run_id }),
    )
    .await?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(RunCreated { run_id })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelOut {
    pub run_id: Uuid,
    /// `cancel_requested`: the orchestrator cancels at its next pass.
    pub status: &'static str,
}

/// Requests cancellation of an unfinished run (editors).
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = Uuid, Path, description = "run id")),
    responses(
        (status = 200, body = CancelOut),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`run_finished`", body = ErrorBody),
    ))]
async fn cancel(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<CancelOut>, Error> {
    let (actor, _) = caller.actor();
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = run_views::project_of(s.conn(), id).await?;
    let (pid, _) = s.require_on(project, Role::Editor, "run").await?;
    s.elevate().await?;
    meshhook_orchestrator::engine::cancel(
        s.conn(),
        id,
        Some(format!("cancelled through the API by {actor}")),
        Utc::now(),
    )
    .await?;
    s.audit(
        Some(pid),
        "run.cancel",
        Some(("run", id.to_string())),
        json!({}),
    )
    .await?;
    s.commit().await?;
    Ok(Json(CancelOut {
        run_id: id,
        status: "cancel_requested",
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    pub deterministic: bool,
    pub mismatches: Vec<String>,
}

/// Re-folds the run's log and re-runs every decision; reports differences
/// (members).
#[utoipa::path(get, path = "/api/v1/runs/{id}/replay", tag = "runs",
    params(("id" = Uuid, Path, description = "run id")),
    responses((status = 200, body = ReplayOut), (status = 404, body = ErrorBody)))]
async fn replay(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<ReplayOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let project = run_views::project_of(s.conn(), id).await?;
    let (pid, _) = s.require_on(project, Role::Viewer, "run").await?;
    let check = meshhook_orchestrator::engine::replay_check(s.conn(), id).await?;
    let redactor = super::redaction::redactor(&ctx, s.conn(), pid).await?;
    s.commit().await?;
    let mut mismatches = check.mismatches;
    mismatches
        .iter_mut()
        .for_each(|m| redactor.redact_string(m));
    Ok(Json(ReplayOut {
        deterministic: check.deterministic,
        mismatches,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// At most this many, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterOut {
    pub run_id: Uuid,
    pub workflow_id: Uuid,
    pub version: Option<i32>,
    /// Why the run failed.
    pub reason: Option<String>,
    /// The step that failed it, or the last one that ran.
    pub last_step: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Failed runs of a project with reason and last step, newest first
/// (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/dead-letter", tag = "runs",
    params(("pid" = Uuid, Path, description = "project id"), DeadLetterQuery),
    responses((status = 200, body = Vec<DeadLetterOut>), (status = 404, body = ErrorBody)))]
async fn dead_letters(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Json<Vec<DeadLetterOut>>, Error> {
    let limit = super::page_limit(q.limit, 100, 500);
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let rows = meshhook_orchestrator::engine::dead_letters(s.conn(), pid, limit).await?;
    let redactor = super::redaction::redactor(&ctx, s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeadLetterOut {
                run_id: d.run_id,
                workflow_id: d.workflow_id,
                version: d.version,
                reason: d.reason.map(|mut r| {
                    redactor.redact_string(&mut r);
                    r
                }),
                last_step: d.last_step,
                failed_at: d.failed_at,
                created_at: d.created_at,
            })
            .collect(),
    ))
}

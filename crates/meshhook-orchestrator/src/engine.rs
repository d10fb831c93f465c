//! The engine's library functions, shared by the API and the CLI: start a
//! run of a published version, test-run a draft, resume from a step,
//! cancel, check a replay, list dead letters. Each takes a connection so
//! the caller decides the transaction (and, in the API, the RLS role).

use chrono::{DateTime, Utc};
use meshhook_core::definition::Definition;
use meshhook_core::event::Event;
use meshhook_core::replay;
use meshhook_core::state::fold;
use meshhook_db::runs::{self, NewRun};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// Why an engine call was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the workflow has no published version")]
    NotPublished,
    #[error("invalid definition: {0}")]
    InvalidDefinition(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("the run already finished ({0})")]
    Finished(String),
    #[error(transparent)]
    Db(#[from] meshhook_db::Error),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// `{body, headers, query}`, the shape expressions see as `trigger`.
pub fn trigger(body: Value, headers: Value, query: Value) -> Value {
    json!({ "body": body, "headers": headers, "query": query })
}

/// A published version, as runs need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Version {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub project_id: Uuid,
    pub version: i32,
    pub definition: Value,
}

/// The latest published version of a workflow.
pub async fn latest_version(
    conn: &mut PgConnection,
    workflow_id: Uuid,
) -> Result<Option<Version>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, workflow_id, project_id, version, definition FROM meshhook.workflow_versions
         WHERE workflow_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(workflow_id)
    .fetch_optional(conn)
    .await?)
}

/// Where a run comes from, beyond its version and trigger.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub webhook_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub kind: Option<&'static str>,
}

/// Starts a run of a published version: the run row, `run_created` and the
/// orchestrator wake-up, in the caller's transaction.
pub async fn start_run(
    conn: &mut PgConnection,
    version: &Version,
    trigger: Value,
    origin: Origin,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let ids = start_runs(conn, version, vec![(trigger, origin)], now).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| Error::Db(meshhook_db::Error::Corrupt("no run started".into())))
}

/// [`start_run`] for many triggers of one version, with a constant number
/// of statements. Returns the run ids in the triggers' order.
pub async fn start_runs(
    conn: &mut PgConnection,
    version: &Version,
    triggers: Vec<(Value, Origin)>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    let mut new = Vec::with_capacity(triggers.len());
    for (trigger, origin) in triggers {
        let id = Uuid::now_v7();
        let created = Event::RunCreated {
            run_id: id,
            workflow_id: version.workflow_id,
            version: version.version,
            trigger: trigger.clone(),
            timeout_ms: None,
            parent_run_id: None,
        };
        let run = NewRun {
            id,
            project_id: version.project_id,
            workflow_id: version.workflow_id,
            workflow_version_id: Some(version.id),
            version: Some(version.version),
            trigger_kind: origin.kind.unwrap_or("webhook"),
            trigger,
            webhook_id: origin.webhook_id,
            idempotency_key: origin.idempotency_key,
            parent_run_id: None,
            resumed_from_node: None,
            definition: None,
        };
        new.push((run, [created]));
    }
    let refs: Vec<(&NewRun, &[Event])> = new.iter().map(|(r, e)| (r, &e[..])).collect();
    runs::insert_many(conn, &refs, now).await?;
    Ok(new.iter().map(|(r, _)| r.id).collect())
}

/// Test-runs a workflow's current draft with a sample trigger. The draft
/// must be valid; the run carries its own copy of the definition.
pub async fn test_run(
    conn: &mut PgConnection,
    workflow_id: Uuid,
    trigger: Value,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let row: Option<(Uuid, Value)> =
        sqlx::query_as("SELECT project_id, definition FROM meshhook.workflows WHERE id = $1")
            .bind(workflow_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (project_id, definition) = row.ok_or(Error::NotFound("workflow"))?;
    meshhook_core::validate::validate(&definition).map_err(|issues| {
        Error::InvalidDefinition(
            issues
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let id = Uuid::now_v7();
    let created = Event::RunCreated {
        run_id: id,
        workflow_id,
        version: 0,
        trigger: trigger.clone(),
        timeout_ms: None,
        parent_run_id: None,
    };
    let run = NewRun {
        id,
        project_id,
        workflow_id,
        workflow_version_id: None,
        version: None,
        trigger_kind: "test",
        trigger,
        webhook_id: None,
        idempotency_key: None,
        parent_run_id: None,
        resumed_from_node: None,
        definition: Some(definition),
    };
    runs::insert(conn, &run, &[created], now).await?;
    Ok(id)
}

async fn definition_of(conn: &mut PgConnection, run: &runs::RunRow) -> Result<Definition, Error> {
    let raw = runs::definition(conn, run)
        .await?
        .ok_or(Error::NotFound("workflow version"))?;
    serde_json::from_value(raw).map_err(|e| Error::InvalidDefinition(e.to_string()))
}

/// Resumes `run_id` from `from_node`: a new run (same version, same
/// trigger, `parent_run_id` set) whose log starts with the parent's events
/// for the steps before `from_node`, so execution restarts there.
pub async fn resume(
    conn: &mut PgConnection,
    run_id: Uuid,
    from_node: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let parent = runs::get(conn, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let def = definition_of(conn, &parent).await?;
    let log = runs::events(conn, run_id).await?;
    let id = Uuid::now_v7();
    let events = replay::resume_events(&def, &log, from_node, id)
        .map_err(|e| Error::Resume(e.to_string()))?;
    let trigger: Value = sqlx::query_scalar("SELECT trigger FROM meshhook.runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&mut *conn)
        .await?;
    let run = NewRun {
        id,
        project_id: parent.project_id,
        workflow_id: parent.workflow_id,
        workflow_version_id: parent.workflow_version_id,
        version: parent.version,
        trigger_kind: "resume",
        trigger,
        webhook_id: None,
        idempotency_key: None,
        parent_run_id: Some(run_id),
        resumed_from_node: Some(from_node.to_owned()),
        definition: parent.definition.clone(),
    };
    runs::insert(conn, &run, &events, now).await?;
    Ok(id)
}

/// Requests cancellation: appends `cancel_requested` and wakes the
/// orchestrator, which cancels at its next pass.
pub async fn cancel(
    conn: &mut PgConnection,
    run_id: Uuid,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let run = runs::lock(conn, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    if matches!(run.status.as_str(), "succeeded" | "failed" | "cancelled") {
        return Err(Error::Finished(run.status));
    }
    runs::append(
        conn,
        run.id,
        run.project_id,
        run.last_seq,
        &[Event::CancelRequested { reason }],
        now,
    )
    .await?;
    meshhook_db::queue::send(
        &mut *conn,
        runs::ORCHESTRATOR_QUEUE,
        &runs::wake_message(run_id),
        std::time::Duration::ZERO,
    )
    .await?;
    Ok(())
}

/// The outcome of a replay check.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayCheck {
    pub deterministic: bool,
    /// Human-readable differences.
    pub mismatches: Vec<String>,
}

/// Refolds the run's log and re-runs every decision at its recorded time,
/// then compares the result with the stored run row (status, output).
pub async fn replay_check(conn: &mut PgConnection, run_id: Uuid) -> Result<ReplayCheck, Error> {
    let run = runs::get(conn, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let def = definition_of(conn, &run).await?;
    let log = runs::events(conn, run_id).await?;
    let mut mismatches = Vec::new();
    match replay::replay(&def, &log) {
        Ok(report) => {
            for m in report.mismatches {
                mismatches.push(format!(
                    "at seq {}: decide yields {:?} but the log has {:?}",
                    m.seq,
                    m.expected.iter().map(Event::type_name).collect::<Vec<_>>(),
                    m.recorded.iter().map(Event::type_name).collect::<Vec<_>>()
                ));
            }
        }
        Err(e) => mismatches.push(format!("the log does not fold: {e}")),
    }
    if let Ok(state) = fold(&def, &log) {
        if state.status.as_str() != run.status {
            mismatches.push(format!(
                "status: the log folds to {} but the run row says {}",
                state.status.as_str(),
                run.status
            ));
        }
        if state.output != run.output {
            mismatches.push("output: the log's output differs from the run row's".to_owned());
        }
        if state.last_seq != run.last_seq {
            mismatches.push(format!(
                "last_seq: the log ends at {} but the run row says {}",
                state.last_seq, run.last_seq
            ));
        }
    }
    Ok(ReplayCheck {
        deterministic: mismatches.is_empty(),
        mismatches,
    })
}

/// A failed run in the dead-letter view.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub run_id: Uuid,
    pub workflow_id: Uuid,
    pub version: Option<i32>,
    pub reason: Option<String>,
    pub last_step: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Failed runs of a project, newest first.
pub async fn dead_letters(
    conn: &mut PgConnection,
    project_id: Uuid,
    limit: i64,
) -> Result<Vec<DeadLetter>, Error> {
    Ok(sqlx::query_as(
        "SELECT id AS run_id, workflow_id, version, error ->> 'message' AS reason,
                coalesce(error ->> 'node_id', last_node_id) AS last_step, finished_at AS failed_at, created_at
         FROM meshhook.runs WHERE project_id = $1 AND status = 'failed'
         ORDER BY finished_at DESC NULLS LAST LIMIT $2",
    )
    .bind(project_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

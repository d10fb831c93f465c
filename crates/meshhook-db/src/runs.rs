//! Runs and their event logs: the engine's persistence.
//!
//! The event log is the truth; the `runs` row caches the fold (status,
//! output, error) for lists and filters. Appends are serialised per run by
//! `runs.last_seq`: [`append`] moves it from N to N+len in the statement that
//! checks it still is N, then inserts seqs N+1..=N+len, all inside the
//! caller's transaction. Workers that also hold the row lock ([`lock`]) are
//! thereby serialised per run, and a lost race is [`Error::SeqConflict`],
//! never a duplicate or a gap.

use chrono::{DateTime, Utc};
use meshhook_core::event::{Event, Recorded};
use meshhook_core::state::RunState;
use serde_json::{Value, json};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::{Result, queue};

/// The queue the orchestrator listens on; its messages are `{"run_id"}`.
pub const ORCHESTRATOR_QUEUE: &str = "orchestrator";
/// The queue the HTTP executor listens on.
pub const EXECUTOR_QUEUE: &str = "executor";

/// Everything needed to start a run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    /// The published version it runs; `None` for a test run of a draft.
    pub workflow_version_id: Option<Uuid>,
    pub version: Option<i32>,
    /// `webhook`, `test`, `resume`, `manual` or `rerun`.
    pub trigger_kind: &'static str,
    /// `{body, headers, query}`.
    pub trigger: Value,
    pub webhook_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub parent_run_id: Option<Uuid>,
    pub resumed_from_node: Option<String>,
    /// The definition itself, for test runs of a draft (no version row).
    pub definition: Option<Value>,
}

/// The columns of a run the engine works with.
#[derive(Debug, Clone, FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version_id: Option<Uuid>,
    pub version: Option<i32>,
    pub status: String,
    pub last_seq: i64,
    pub definition: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<Value>,
}

/// The orchestrator's wake-up message for a run.
pub fn wake_message(run_id: Uuid) -> Value {
    json!({ "run_id": run_id })
}

/// Splits an event into its `type` and the rest of its fields.
pub fn event_parts(event: &Event) -> Result<(&'static str, Value)> {
    let mut data = serde_json::to_value(event).map_err(|e| crate::Error::Corrupt(e.to_string()))?;
    if let Value::Object(map) = &mut data {
        map.remove("type");
    }
    Ok((event.type_name(), data))
}

/// Rebuilds an event from its stored `type` and `data`.
pub fn event_from_parts(ty: &str, data: Value) -> Result<Event> {
    let mut obj = match data {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(crate::Error::Corrupt(format!(
                "event data is not an object: {other}"
            )));
        }
    };
    obj.insert("type".to_owned(), Value::String(ty.to_owned()));
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| crate::Error::Corrupt(format!("event {ty}: {e}")))
}

/// Inserts the run with its opening events and wakes the orchestrator —
/// all in the caller's transaction.
pub async fn insert(
    conn: &mut PgConnection,
    run: &NewRun,
    events: &[Event],
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO meshhook.runs (id, project_id, workflow_id, workflow_version_id, version, trigger_kind, trigger,
                                    webhook_id, idempotency_key, parent_run_id, resumed_from_node, definition, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(run.id)
    .bind(run.project_id)
    .bind(run.workflow_id)
    .bind(run.workflow_version_id)
    .bind(run.version)
    .bind(run.trigger_kind)
    .bind(&run.trigger)
    .bind(run.webhook_id)
    .bind(&run.idempotency_key)
    .bind(run.parent_run_id)
    .bind(&run.resumed_from_node)
    .bind(&run.definition)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    append(conn, run.id, run.project_id, 0, events, at).await?;
    queue::send(
        &mut *conn,
        ORCHESTRATOR_QUEUE,
        &wake_message(run.id),
        std::time::Duration::ZERO,
    )
    .await?;
    Ok(())
}

/// Appends `events` after `expected_last_seq`, all stamped `at`. Returns
/// the new last seq. Fails with [`crate::Error::SeqConflict`] when another
/// writer appended first.
pub async fn append(
    conn: &mut PgConnection,
    run_id: Uuid,
    project_id: Uuid,
    expected_last_seq: i64,
    events: &[Event],
    at: DateTime<Utc>,
) -> Result<i64> {
    if events.is_empty() {
        return Ok(expected_last_seq);
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let moved = sqlx::query("UPDATE meshhook.runs SET last_seq = last_seq + $3, updated_at = $4 WHERE id = $1 AND last_seq = $2")
        .bind(run_id)
        .bind(expected_last_seq)
        .bind(n)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    if moved.rows_affected() != 1 {
        return Err(crate::Error::SeqConflict {
            run_id,
            expected_last_seq,
        });
    }
    insert_events(conn, run_id, project_id, expected_last_seq, events, at).await?;
    Ok(expected_last_seq + n)
}

/// Inserts `events` as seqs `after + 1 ..` (the caller moved `last_seq`).
async fn insert_events(
    conn: &mut PgConnection,
    run_id: Uuid,
    project_id: Uuid,
    after: i64,
    events: &[Event],
    at: DateTime<Utc>,
) -> Result<()> {
    let mut types = Vec::with_capacity(events.len());
    let mut datas = Vec::with_capacity(events.len());
    for e in events {
        let (ty, data) = event_parts(e)?;
        types.push(ty);
        datas.push(data);
    }
    sqlx::query(
        "INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at)
         SELECT $1, $2 + u.i, $3, u.t, u.d, $6
         FROM unnest($4::text[], $5::jsonb[]) WITH ORDINALITY AS u(t, d, i)",
    )
    .bind(run_id)
    .bind(after)
    .bind(project_id)
    .bind(&types)
    .bind(&datas)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`append`] plus the fold's summary (status, output, error, times) in
/// one UPDATE that also checks and moves `last_seq`, then the events'
/// INSERT. The orchestrator's hot path.
pub async fn append_with_summary(
    conn: &mut PgConnection,
    run: &RunRow,
    events: &[Event],
    at: DateTime<Utc>,
    state: &RunState,
) -> Result<i64> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let error = state
        .error
        .as_ref()
        .map(|message| json!({ "message": message, "node_id": state.failed_node }));
    let moved = sqlx::query(
        "UPDATE meshhook.runs SET last_seq = last_seq + $3, status = $4, output = $5, error = $6, last_node_id = $7,
                started_at = coalesce(started_at, CASE WHEN $4 <> 'queued' THEN $8 END),
                finished_at = $9, updated_at = $8
         WHERE id = $1 AND last_seq = $2",
    )
    .bind(run.id)
    .bind(run.last_seq)
    .bind(n)
    .bind(state.status.as_str())
    .bind(&state.output)
    .bind(error)
    .bind(&state.last_node)
    .bind(at)
    .bind(state.finished_at)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(crate::Error::SeqConflict {
            run_id: run.id,
            expected_last_seq: run.last_seq,
        });
    }
    insert_events(conn, run.id, run.project_id, run.last_seq, events, at).await?;
    Ok(run.last_seq + n)
}

const RUN_COLUMNS: &str = "id, project_id, workflow_id, workflow_version_id, version, status, last_seq, definition, output, error";

/// Locks the run's row for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, run_id: Uuid) -> Result<Option<RunRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM meshhook.runs WHERE id = $1 FOR UPDATE"
    )))
    .bind(run_id)
    .fetch_optional(conn)
    .await?)
}

/// Reads the run's row without locking.
pub async fn get(conn: &mut PgConnection, run_id: Uuid) -> Result<Option<RunRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM meshhook.runs WHERE id = $1"
    )))
    .bind(run_id)
    .fetch_optional(conn)
    .await?)
}

/// The definition a run executes: its own (test runs) or its version's.
/// `None` when the version row is gone.
pub async fn definition(conn: &mut PgConnection, run: &RunRow) -> Result<Option<Value>> {
    if let Some(d) = &run.definition {
        return Ok(Some(d.clone()));
    }
    let Some(vid) = run.workflow_version_id else {
        return Ok(None);
    };
    Ok(
        sqlx::query_scalar("SELECT definition FROM meshhook.workflow_versions WHERE id = $1")
            .bind(vid)
            .fetch_optional(conn)
            .await?,
    )
}

/// The run's whole event log, in order.
pub async fn events(conn: &mut PgConnection, run_id: Uuid) -> Result<Vec<Recorded>> {
    let rows: Vec<(i64, String, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT seq, type, data, at FROM meshhook.events WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(seq, ty, data, at)| {
            Ok(Recorded {
                seq,
                at,
                event: event_from_parts(&ty, data)?,
            })
        })
        .collect()
}

/// Marks a run failed without events of its own making (its definition is
/// gone): appends `RunFailed` and saves the status.
pub async fn fail_unrunnable(
    conn: &mut PgConnection,
    run: &RunRow,
    message: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let event = Event::RunFailed {
        error: message.to_owned(),
        node_id: None,
        output: None,
    };
    append(conn, run.id, run.project_id, run.last_seq, &[event], at).await?;
    sqlx::query(
        "UPDATE meshhook.runs SET status = 'failed', error = $2, finished_at = $3, updated_at = $3 WHERE id = $1",
    )
    .bind(run.id)
    .bind(json!({ "message": message }))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

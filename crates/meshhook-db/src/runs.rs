//! Runs and their event logs: the engine's persistence.
//!
//! The event log is the truth; the `runs` row caches the fold (status,
//! output, error) for lists and filters. Appends are serialised per run by
//! `runs.last_seq`: [`append`] moves it from N to N+len in the statement that
//! checks it still is N, then inserts seqs N+1..=N+len, all inside the
//! caller's transaction. Workers that also hold the row lock ([`lock`]) are
//! thereby serialised per run, and a lost race is [`Error::SeqConflict`],
//! never a duplicate or a gap.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use meshhook_core::definition::Definition;
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

/// A bounded cache of parsed definitions by workflow version id. Versions
/// are immutable, so an entry never goes stale; test runs (whose
/// definition lives on the run row) bypass it.
#[derive(Clone, Default)]
pub struct Definitions {
    map: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Arc<Definition>>>>,
}

impl Definitions {
    const CAPACITY: usize = 1024;

    /// The cached definition of a published version.
    pub fn get(&self, id: Uuid) -> Option<Arc<Definition>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Caches a published version's definition.
    pub fn put(&self, id: Uuid, def: Arc<Definition>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(id, def);
    }
}

impl Definitions {
    /// The definition a run executes (its own for test runs, else its
    /// version's, from the cache when possible), or why it cannot run.
    pub async fn load(
        &self,
        conn: &mut PgConnection,
        run: &RunRow,
    ) -> Result<std::result::Result<Arc<Definition>, String>> {
        if let (None, Some(vid)) = (&run.definition, run.workflow_version_id)
            && let Some(d) = self.get(vid)
        {
            return Ok(Ok(d));
        }
        let Some(raw) = definition(conn, run).await? else {
            return Ok(Err("the run's workflow version no longer exists".into()));
        };
        Ok(match serde_json::from_value::<Definition>(raw) {
            Ok(d) => {
                let d = Arc::new(d);
                if let (None, Some(vid)) = (&run.definition, run.workflow_version_id) {
                    self.put(vid, d.clone());
                }
                Ok(d)
            }
            Err(e) => Err(format!("the run's definition cannot be read: {e}")),
        })
    }
}

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
    insert_many(conn, &[(run, events)], at).await
}

/// [`insert`] for many runs with a constant number of statements (runs,
/// events, wake-ups): how batched starts and grouped webhook deliveries
/// share one transaction cheaply.
pub async fn insert_many(
    conn: &mut PgConnection,
    new: &[(&NewRun, &[Event])],
    at: DateTime<Utc>,
) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = new.iter().map(|(r, _)| r.id).collect();
    let projects: Vec<Uuid> = new.iter().map(|(r, _)| r.project_id).collect();
    let workflows: Vec<Uuid> = new.iter().map(|(r, _)| r.workflow_id).collect();
    let version_ids: Vec<Option<Uuid>> = new.iter().map(|(r, _)| r.workflow_version_id).collect();
    let versions: Vec<Option<i32>> = new.iter().map(|(r, _)| r.version).collect();
    let kinds: Vec<&str> = new.iter().map(|(r, _)| r.trigger_kind).collect();
    let triggers: Vec<&Value> = new.iter().map(|(r, _)| &r.trigger).collect();
    let webhooks: Vec<Option<Uuid>> = new.iter().map(|(r, _)| r.webhook_id).collect();
    let keys: Vec<Option<&str>> = new
        .iter()
        .map(|(r, _)| r.idempotency_key.as_deref())
        .collect();
    let parents: Vec<Option<Uuid>> = new.iter().map(|(r, _)| r.parent_run_id).collect();
    let resumed: Vec<Option<&str>> = new
        .iter()
        .map(|(r, _)| r.resumed_from_node.as_deref())
        .collect();
    let definitions: Vec<Option<&Value>> = new.iter().map(|(r, _)| r.definition.as_ref()).collect();
    let last_seqs: Vec<i64> = new
        .iter()
        .map(|(_, e)| i64::try_from(e.len()).unwrap_or(i64::MAX))
        .collect();
    // Instead of a foreign key checked row by row (migration 0011): lock
    // each distinct workflow once, so a concurrent delete of one waits for
    // this transaction and then removes its runs too.
    let mut workflow_rows = workflows.clone();
    workflow_rows.sort_unstable();
    workflow_rows.dedup();
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM meshhook.workflows WHERE id = ANY($1) FOR KEY SHARE) w",
    )
    .bind(&workflow_rows)
    .fetch_one(&mut *conn)
    .await?;
    if usize::try_from(locked).ok() != Some(workflow_rows.len()) {
        return Err(crate::Error::Gone("workflow"));
    }
    sqlx::query(
        "INSERT INTO meshhook.runs (id, project_id, workflow_id, workflow_version_id, version, trigger_kind, trigger,
                                    webhook_id, idempotency_key, parent_run_id, resumed_from_node, definition, last_seq,
                                    created_at, updated_at)
         SELECT u.*, $14, $14
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int4[], $6::text[], $7::jsonb[],
                     $8::uuid[], $9::text[], $10::uuid[], $11::text[], $12::jsonb[], $13::int8[]) AS u",
    )
        .bind(&ids)
        .bind(&projects)
        .bind(&workflows)
        .bind(&version_ids)
        .bind(&versions)
        .bind(&kinds)
        .bind(&triggers)
        .bind(&webhooks)
        .bind(&keys)
        .bind(&parents)
        .bind(&resumed)
        .bind(&definitions)
        .bind(&last_seqs)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    let mut rows = EventRows::default();
    let mut wakes = Vec::with_capacity(new.len());
    for (run, events) in new {
        rows.push(run.id, run.project_id, 0, events)?;
        wakes.push(wake_message(run.id));
    }
    rows.insert(conn, at).await?;
    queue::send_batch(
        &mut *conn,
        ORCHESTRATOR_QUEUE,
        &wakes,
        std::time::Duration::ZERO,
    )
    .await?;
    Ok(())
}

/// Events of several runs, gathered for one INSERT.
#[derive(Default)]
struct EventRows {
    run_ids: Vec<Uuid>,
    seqs: Vec<i64>,
    projects: Vec<Uuid>,
    types: Vec<&'static str>,
    datas: Vec<Value>,
}

impl EventRows {
    /// Adds `events` as seqs `after + 1 ..` of `run_id`.
    fn push(&mut self, run_id: Uuid, project_id: Uuid, after: i64, events: &[Event]) -> Result<()> {
        for (i, e) in events.iter().enumerate() {
            let (ty, data) = event_parts(e)?;
            self.run_ids.push(run_id);
            self.seqs
                .push(after + 1 + i64::try_from(i).unwrap_or(i64::MAX));
            self.projects.push(project_id);
            self.types.push(ty);
            self.datas.push(data);
        }
        Ok(())
    }

    async fn insert(&self, conn: &mut PgConnection, at: DateTime<Utc>) -> Result<()> {
        if self.run_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at)
             SELECT u.r, u.s, u.p, u.t, u.d, $6
             FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::text[], $5::jsonb[]) AS u(r, s, p, t, d)",
        )
        .bind(&self.run_ids)
        .bind(&self.seqs)
        .bind(&self.projects)
        .bind(&self.types)
        .bind(&self.datas)
        .bind(at)
        .execute(conn)
        .await?;
        Ok(())
    }
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
    let mut rows = EventRows::default();
    rows.push(run_id, project_id, expected_last_seq, events)?;
    rows.insert(conn, at).await?;
    Ok(expected_last_seq + n)
}

/// One run's share of [`append_many_with_summary`].
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// The run as locked (its `last_seq` is the expected one).
    pub run: &'a RunRow,
    pub events: &'a [Event],
    /// The fold after `events`: status, output, error, times.
    pub state: &'a RunState,
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
    append_many_with_summary(conn, &[Append { run, events, state }], at).await?;
    Ok(run.last_seq + i64::try_from(events.len()).unwrap_or(i64::MAX))
}

/// [`append_with_summary`] for many runs in two statements: one UPDATE that
/// checks and moves every run's `last_seq` and saves its summary, one
/// INSERT of all their events. Either every run's append happens or the
/// call fails with [`crate::Error::SeqConflict`] (naming the first run
/// whose `last_seq` moved) and the caller's transaction must roll back.
pub async fn append_many_with_summary(
    conn: &mut PgConnection,
    items: &[Append<'_>],
    at: DateTime<Utc>,
) -> Result<()> {
    let items: Vec<&Append<'_>> = items.iter().filter(|i| !i.events.is_empty()).collect();
    if items.is_empty() {
        return Ok(());
    }
    let len = items.len();
    let mut ids = Vec::with_capacity(len);
    let mut expected = Vec::with_capacity(len);
    let mut counts = Vec::with_capacity(len);
    let mut statuses = Vec::with_capacity(len);
    let mut outputs = Vec::with_capacity(len);
    let mut errors = Vec::with_capacity(len);
    let mut last_nodes = Vec::with_capacity(len);
    let mut finished = Vec::with_capacity(len);
    for item in &items {
        let state = item.state;
        ids.push(item.run.id);
        expected.push(item.run.last_seq);
        counts.push(i64::try_from(item.events.len()).unwrap_or(i64::MAX));
        statuses.push(state.status.as_str());
        outputs.push(state.output.clone());
        errors.push(
            state
                .error
                .as_ref()
                .map(|message| json!({ "message": message, "node_id": state.failed_node })),
        );
        last_nodes.push(state.last_node.clone());
        finished.push(state.finished_at);
    }
    let moved: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE meshhook.runs r SET last_seq = r.last_seq + u.n, status = u.status, output = u.output,
                error = u.error, last_node_id = u.last_node,
                started_at = coalesce(r.started_at, CASE WHEN u.status <> 'queued' THEN $9 END),
                finished_at = u.finished_at, updated_at = $9
         FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[], $8::timestamptz[])
              AS u(id, expected, n, status, output, error, last_node, finished_at)
         WHERE r.id = u.id AND r.last_seq = u.expected
         RETURNING r.id",
    )
    .bind(&ids)
    .bind(&expected)
    .bind(&counts)
    .bind(&statuses)
    .bind(&outputs)
    .bind(&errors)
    .bind(&last_nodes)
    .bind(&finished)
    .bind(at)
    .fetch_all(&mut *conn)
    .await?;
    if moved.len() != len {
        let stale = items
            .iter()
            .find(|i| !moved.contains(&i.run.id))
            .map(|i| (i.run.id, i.run.last_seq))
            .unwrap_or_default();
        return Err(crate::Error::SeqConflict {
            run_id: stale.0,
            expected_last_seq: stale.1,
        });
    }
    let mut rows = EventRows::default();
    for item in &items {
        rows.push(
            item.run.id,
            item.run.project_id,
            item.run.last_seq,
            item.events,
        )?;
    }
    rows.insert(conn, at).await?;
    Ok(())
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

/// Locks the rows of `ids` (in id order, so that concurrent batch lockers
/// cannot deadlock one another) for the rest of the transaction. Missing
/// runs are simply absent from the result.
pub async fn lock_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<RunRow>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM meshhook.runs WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    )))
    .bind(&ids)
    .fetch_all(conn)
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
    let mut logs = events_many(conn, &[run_id]).await?;
    Ok(logs.remove(&run_id).unwrap_or_default())
}

/// The whole event logs of several runs in one query, each in order.
pub async fn events_many(
    conn: &mut PgConnection,
    run_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Vec<Recorded>>> {
    let rows: Vec<(Uuid, i64, String, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT run_id, seq, type, data, at FROM meshhook.events WHERE run_id = ANY($1) ORDER BY run_id, seq",
    )
    .bind(run_ids)
    .fetch_all(conn)
    .await?;
    let mut logs: std::collections::HashMap<Uuid, Vec<Recorded>> =
        std::collections::HashMap::with_capacity(run_ids.len());
    for (run_id, seq, ty, data, at) in rows {
        logs.entry(run_id).or_default().push(Recorded {
            seq,
            at,
            event: event_from_parts(&ty, data)?,
        });
    }
    Ok(logs)
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

//! Runs: the project's run list, one run with its steps, its event log,
//! and the actions on it (cancel, resume from a step).

use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, get, post};

/// One row of the run list.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub workflow_id: String,
    pub version: Option<i32>,
    pub status: String,
    pub trigger_kind: String,
    pub parent_run_id: Option<String>,
    pub error: Option<Value>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// A page of the run list.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    pub next_cursor: Option<String>,
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub node_id: String,
    pub status: String,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: Option<Value>,
    pub error: Option<String>,
}

/// A run in full.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub id: String,
    pub project_id: String,
    pub workflow_id: String,
    pub version: Option<i32>,
    pub status: String,
    pub trigger_kind: String,
    pub trigger: Value,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub parent_run_id: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub steps: Vec<Step>,
}

impl Run {
    /// Whether the run can still change (cancel makes sense).
    pub fn is_open(&self) -> bool {
        is_open(&self.status)
    }
}

/// Whether a run in `status` can still change.
pub fn is_open(status: &str) -> bool {
    matches!(status, "queued" | "running" | "waiting")
}

/// Whether an event of `kind` ends its run (nothing is appended after it).
pub fn ends_run(kind: &str) -> bool {
    matches!(
        kind,
        "run_succeeded" | "run_failed" | "run_cancelled" | "run_timed_out"
    )
}

/// The badge class of a run or step status.
pub fn badge(status: &str) -> &'static str {
    match status {
        "succeeded" => "badge badge-ok",
        "failed" | "cancelled" => "badge badge-error",
        "running" | "retrying" | "waiting" | "queued" => "badge badge-off",
        _ => "badge",
    }
}

/// One event of a run's log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub data: Value,
    pub at: String,
}

/// The run list's filters (empty strings: any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// A run status.
    pub status: String,
    /// A workflow id.
    pub workflow: String,
    /// Runs created at or after this time (RFC 3339).
    pub since: String,
}

/// The list's query string for the given filters and page.
pub fn list_query(f: &Filters, cursor: Option<&str>) -> String {
    let mut q = vec!["limit=25".to_owned()];
    for (key, value) in [
        ("status", &f.status),
        ("workflow_id", &f.workflow),
        ("created_after", &f.since),
    ] {
        if !value.is_empty() {
            q.push(format!("{key}={}", encode(value)));
        }
    }
    if let Some(c) = cursor {
        q.push(format!("cursor={}", encode(c)));
    }
    q.join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /api/v1/projects/{pid}/runs`.
pub async fn list(project: &str, f: &Filters, cursor: Option<&str>) -> Result<RunPage, Error> {
    get(&format!(
        "/api/v1/projects/{project}/runs?{}",
        list_query(f, cursor)
    ))
    .await
}

/// `GET /api/v1/runs/{id}`.
pub async fn fetch(id: &str) -> Result<Run, Error> {
    get(&format!("/api/v1/runs/{id}")).await
}

/// `GET /api/v1/runs/{id}/events`.
pub async fn events(id: &str) -> Result<Vec<Event>, Error> {
    get(&format!("/api/v1/runs/{id}/events")).await
}

/// `POST /api/v1/runs/{id}/cancel`.
pub async fn cancel(id: &str) -> Result<Value, Error> {
    post(&format!("/api/v1/runs/{id}/cancel"), &json!({})).await
}

#[derive(Clone, Debug)]
struct Started {
    run_id: String,
}

/// `POST /api/v1/runs/{id}/resume` from `node`: the new run's id.
pub async fn resume(id: &str, node: &str) -> Result<String, Error> {
    let s: Started = post(
        &format!("/api/v1/runs/{id}/resume"),
        &json!({ "from_node": node }),
    )
    .await?;
    Ok(s.run_id)
}

/// The replay check's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub deterministic: bool,
    pub mismatches: Vec<String>,
}

/// `GET /api/v1/runs/{id}/replay`: re-runs every decision of the run's log.
pub async fn replay(id: &str) -> Result<Replay, Error> {
    get(&format!("/api/v1/runs/{id}/replay")).await
}

/// A failed run, as the dead-letter list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub run_id: String,
    pub workflow_id: String,
    pub version: Option<i32>,
    pub reason: Option<String>,
    pub last_step: Option<String>,
    pub failed_at: Option<String>,
    pub created_at: String,
}

/// `GET /api/v1/projects/{pid}/dead-letter`.
pub async fn dead_letters(project: &str) -> Result<Vec<DeadLetter>, Error> {
    get(&format!("/api/v1/projects/{project}/dead-letter?limit=200")).await
}

impl FromJson for RunSummary {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(RunSummary {
            id: f.string("id")?,
            workflow_id: f.string("workflow_id")?,
            version: f.opt_i32("version"),
            status: f.string("status")?,
            trigger_kind: f.string("trigger_kind")?,
            parent_run_id: f.opt_string("parent_run_id"),
            error: f.opt_value("error"),
            created_at: f.string("created_at")?,
            finished_at: f.opt_string("finished_at"),
        })
    }
}

impl FromJson for RunPage {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(RunPage {
            items: f.decode("items")?,
            next_cursor: f.opt_string("next_cursor"),
        })
    }
}

impl FromJson for Step {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Step {
            node_id: f.string("node_id")?,
            status: f.string("status")?,
            attempts: f.int_in("attempts")?,
            started_at: f.opt_string("started_at"),
            finished_at: f.opt_string("finished_at"),
            output: f.opt_value("output"),
            error: f.opt_string("error"),
        })
    }
}

impl FromJson for Run {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Run {
            id: f.string("id")?,
            project_id: f.string("project_id")?,
            workflow_id: f.string("workflow_id")?,
            version: f.opt_i32("version"),
            status: f.string("status")?,
            trigger_kind: f.string("trigger_kind")?,
            trigger: f.value("trigger"),
            output: f.opt_value("output"),
            error: f.opt_value("error"),
            parent_run_id: f.opt_string("parent_run_id"),
            created_at: f.string("created_at")?,
            finished_at: f.opt_string("finished_at"),
            steps: f.opt_decode("steps")?.unwrap_or_default(),
        })
    }
}

impl FromJson for Event {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Event {
            seq: f.int("seq")?,
            kind: f.string("type")?,
            data: f.value("data"),
            at: f.string("at")?,
        })
    }
}

impl FromJson for Started {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(Started {
            run_id: Fields::of(value)?.string("run_id")?,
        })
    }
}

impl FromJson for Replay {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Replay {
            deterministic: f.boolean("deterministic")?,
            mismatches: f.decode("mismatches")?,
        })
    }
}

impl FromJson for DeadLetter {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(DeadLetter {
            run_id: f.string("run_id")?,
            workflow_id: f.string("workflow_id")?,
            version: f.opt_i32("version"),
            reason: f.opt_string("reason"),
            last_step: f.opt_string("last_step"),
            failed_at: f.opt_string("failed_at"),
            created_at: f.string("created_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_encodes_filters_and_cursor() {
        assert_eq!(list_query(&Filters::default(), None), "limit=25");
        let f = Filters {
            status: "failed".into(),
            workflow: "w-1".into(),
            since: "2026-11-27T10:00:00.000Z".into(),
        };
        assert_eq!(
            list_query(&f, Some("a+b/c=")),
            "limit=25&status=failed&workflow_id=w-1&created_after=2026-11-27T10%3A00%3A00.000Z&cursor=a%2Bb%2Fc%3D"
        );
    }

    #[test]
    fn badges_and_openness() {
        assert_eq!(badge("succeeded"), "badge badge-ok");
        assert_eq!(badge("failed"), "badge badge-error");
        assert_eq!(badge("waiting"), "badge badge-off");
        assert!(is_open("queued") && !is_open("cancelled"));
    }
}

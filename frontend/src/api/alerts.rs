//! Alert rules of a project, their test sends and delivery log. The
//! signing secret comes back once, in the answer to create. Answers stay
//! JSON (`serde_json::Value`) apart from [`Rule`], read by hand: derived
//! decoders cost wasm size.

use serde_json::{Value, json};

use super::{Error, delete, get, patch, post};

/// Rule kinds with their labels, as the create form offers them.
pub const KINDS: [(&str, &str); 3] = [
    ("run_failed", "A run fails"),
    ("failure_rate", "Failure rate"),
    ("queue_lag", "Queue lag"),
];

/// An alert rule (never its secret).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    pub id: String,
    pub name: String,
    /// `run_failed`, `failure_rate` or `queue_lag`.
    pub kind: String,
    pub url: String,
    pub workflow_id: Option<String>,
    /// failure_rate: 0..=1; queue_lag: seconds.
    pub threshold: Option<f64>,
    pub window_secs: i32,
    pub min_runs: i32,
    pub cooldown_secs: i32,
    pub enabled: bool,
    pub last_fired_at: Option<String>,
}

impl Rule {
    /// Reads a rule from the API's JSON; `None` without an id.
    pub fn from_json(v: &Value) -> Option<Self> {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let int = |k: &str| {
            v[k].as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or_default()
        };
        Some(Self {
            id: text("id")?,
            name: text("name").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            url: text("url").unwrap_or_default(),
            workflow_id: text("workflow_id"),
            threshold: v["threshold"].as_f64(),
            window_secs: int("window_secs"),
            min_runs: int("min_runs"),
            cooldown_secs: int("cooldown_secs"),
            enabled: v["enabled"].as_bool().unwrap_or_default(),
            last_fired_at: text("last_fired_at"),
        })
    }
}

/// `GET /api/v1/projects/{pid}/alerts`: the rules, oldest first.
pub async fn list(project: String) -> Result<Value, Error> {
    get(&format!("/api/v1/projects/{project}/alerts")).await
}

/// `POST /api/v1/projects/{pid}/alerts` with an `AlertIn` body: the rule
/// with its `signing_secret`.
pub async fn create(project: &str, body: &Value) -> Result<Value, Error> {
    post(&format!("/api/v1/projects/{project}/alerts"), body).await
}

/// `PATCH /api/v1/alerts/{id}`.
pub async fn update(id: &str, body: &Value) -> Result<Value, Error> {
    patch(&format!("/api/v1/alerts/{id}"), body).await
}

/// `DELETE /api/v1/alerts/{id}`.
pub async fn remove(id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/alerts/{id}")).await
}

/// `POST /api/v1/alerts/{id}/test`: `{delivery_id}` of the queued alert.
pub async fn test(id: &str) -> Result<Value, Error> {
    post(&format!("/api/v1/alerts/{id}/test"), &json!({})).await
}

/// `GET /api/v1/alerts/{id}/deliveries` (newest 50): `[{id, type, status,
/// attempts, last_status_code, last_error, created_at, ...}]`.
pub async fn deliveries(id: String) -> Result<Value, Error> {
    get(&format!("/api/v1/alerts/{id}/deliveries?limit=50")).await
}

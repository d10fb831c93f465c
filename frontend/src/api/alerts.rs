//! Alert rules of a project, their test sends and delivery log. The
//! signing secret comes back once, in the answer to create.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, delete, get, patch, post};

/// Rule kinds with their labels, as the create form offers them.
pub const KINDS: [(&str, &str); 3] = [
    ("run_failed", "A run fails"),
    ("failure_rate", "Failure rate over a window"),
    ("queue_lag", "Queue lag over a threshold"),
];

/// An alert rule (never its secret).
#[derive(Clone, Debug, PartialEq, Deserialize)]
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
    pub created_at: String,
}

/// The answer to create: the rule and its secret, shown once.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Created {
    #[serde(flatten)]
    pub rule: Rule,
    pub signing_secret: Option<String>,
}

/// One attempt series of an alert.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Delivery {
    pub id: String,
    /// `alert.run_failed`, ..., `alert.test`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl Delivery {
    /// Whether the executor may still send it.
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

#[derive(Deserialize)]
struct Queued {
    delivery_id: String,
}

/// `GET /api/v1/projects/{pid}/alerts`.
pub async fn list(project: &str) -> Result<Vec<Rule>, Error> {
    get(&format!("/api/v1/projects/{project}/alerts")).await
}

/// `POST /api/v1/projects/{pid}/alerts` with an `AlertIn` body.
pub async fn create(project: &str, body: &Value) -> Result<Created, Error> {
    post(&format!("/api/v1/projects/{project}/alerts"), body).await
}

/// `PATCH /api/v1/alerts/{id}`.
pub async fn update(id: &str, body: &Value) -> Result<Rule, Error> {
    patch(&format!("/api/v1/alerts/{id}"), body).await
}

/// `DELETE /api/v1/alerts/{id}`.
pub async fn remove(id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/alerts/{id}")).await
}

/// `POST /api/v1/alerts/{id}/test`: the queued delivery's id.
pub async fn test(id: &str) -> Result<String, Error> {
    let q: Queued = post(&format!("/api/v1/alerts/{id}/test"), &json!({})).await?;
    Ok(q.delivery_id)
}

/// `GET /api/v1/alerts/{id}/deliveries` (newest 50).
pub async fn deliveries(id: &str) -> Result<Vec<Delivery>, Error> {
    get(&format!("/api/v1/alerts/{id}/deliveries?limit=50")).await
}

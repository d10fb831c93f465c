//! Project metrics: success rate over time, step latency, failure hotspots
//! and the unfinished runs now (`GET /api/v1/projects/{pid}/metrics`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Error, get};

/// The windows the API computes metrics over.
pub const WINDOWS: [&str; 3] = ["1h", "24h", "7d"];

/// Finished runs in one hour.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Bucket {
    /// Start of the hour (RFC 3339).
    pub bucket: String,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// succeeded / finished, 0..=1.
    pub success_rate: f64,
}

impl Bucket {
    /// Runs that finished in the hour.
    pub fn finished(&self) -> i64 {
        self.succeeded + self.failed + self.cancelled
    }
}

/// One workflow's finished runs over the window.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct WorkflowRate {
    pub workflow_id: String,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub success_rate: f64,
    /// Its hours with finished runs, oldest first.
    pub buckets: Vec<Bucket>,
}

/// Step latency of one workflow's node.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Latency {
    pub workflow_id: String,
    pub node_id: String,
    pub steps: i64,
    pub failed: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// Failed runs attributed to one node (`None`: no node failed them).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Failures {
    pub workflow_id: String,
    pub node_id: Option<String>,
    pub failures: i64,
    pub last_failed_at: String,
}

/// The project's unfinished runs now.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Current {
    /// `queued`, `running`, `waiting` -> count.
    pub runs: BTreeMap<String, i64>,
    /// Age of the oldest queued run, in seconds.
    pub oldest_queued_s: Option<f64>,
}

/// The answer of the metrics endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Metrics {
    pub window: String,
    /// Hours with finished runs, oldest first.
    pub success_rate: Vec<Bucket>,
    pub workflows: Vec<WorkflowRate>,
    /// Slowest p95 first.
    pub latency: Vec<Latency>,
    /// Most failures first.
    pub failures: Vec<Failures>,
    pub current: Current,
}

/// Hours a window spans, and its label for the chart's start.
pub fn window_hours(window: &str) -> (f64, &'static str) {
    match window {
        "1h" => (1.0, "1 h ago"),
        "7d" => (168.0, "7 days ago"),
        _ => (24.0, "24 h ago"),
    }
}

/// `GET /api/v1/projects/{pid}/metrics?window=`.
pub async fn fetch(project: &str, window: &str) -> Result<Metrics, Error> {
    get(&format!(
        "/api/v1/projects/{project}/metrics?window={window}"
    ))
    .await
}

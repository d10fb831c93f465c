//! Project metrics (`GET /api/v1/projects/{pid}/metrics?window=`): success
//! rate per hour, per workflow, step latency per node, failure hotspots and
//! the unfinished runs now. The answer stays JSON (`serde_json::Value`):
//! the page only reads a few numbers from it, and typed structs with their
//! derived decoders cost wasm size (see docs/observability.md for the
//! shape).

use serde_json::Value;

use super::{Error, get};

/// The windows the API computes metrics over.
pub const WINDOWS: [&str; 3] = ["1h", "24h", "7d"];

/// Hours a window spans, and its label for the chart's start.
pub fn window_hours(window: &str) -> (f64, &'static str) {
    match window {
        "1h" => (1.0, "1 h ago"),
        "7d" => (168.0, "7 days ago"),
        _ => (24.0, "24 h ago"),
    }
}

/// `GET /api/v1/projects/{pid}/metrics?window=`.
pub async fn fetch(project: String, window: String) -> Result<Value, Error> {
    get(&format!(
        "/api/v1/projects/{project}/metrics?window={window}"
    ))
    .await
}

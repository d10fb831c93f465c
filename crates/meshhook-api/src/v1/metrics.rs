//! `GET /api/v1/projects/{pid}/metrics?window=24h`: a project's success
//! rate over time, step latency percentiles, failure hotspots (from the
//! materialized views of migration 0013, refreshed by the orchestrator) and
//! its unfinished runs now.
//!
//! The views have no row-level security: membership is checked first under
//! RLS, then the same transaction leaves RLS ([`Session::elevate`]) and
//! reads the views with an explicit project filter (`meshhook_db::metrics`).

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Json, Path, Query};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new().routes(routes!(project_metrics))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// `1h`, `24h` (default) or `7d`.
    pub window: Option<String>,
}

/// Finished runs in one hour (all workflows).
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessBucket {
    /// Start of the hour.
    pub bucket: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// succeeded / (succeeded + failed + cancelled).
    pub success_rate: f64,
}

/// One workflow's finished runs over the window, with its hourly buckets.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowRate {
    pub workflow_id: Uuid,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub success_rate: f64,
    pub buckets: Vec<SuccessBucket>,
}

/// Step latency of one node over the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeLatency {
    pub workflow_id: Uuid,
    pub node_id: String,
    /// Steps that ended in the window.
    pub steps: i64,
    pub failed: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// Failed runs attributed to one node over the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeFailures {
    pub workflow_id: Uuid,
    /// `null` when no node failed the run (a run timeout).
    pub node_id: Option<String>,
    pub failures: i64,
    pub last_failed_at: DateTime<Utc>,
}

/// The project's unfinished runs now (live, not from the views).
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentCounts {
    /// `queued`, `running`, `waiting` -> count.
    pub runs: BTreeMap<String, i64>,
    /// Age of the oldest queued run, in seconds (its queue lag); `null`
    /// when none is queued.
    pub oldest_queued_s: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectMetrics {
    pub window: String,
    /// Every hour of the window with finished runs, oldest first.
    pub success_rate: Vec<SuccessBucket>,
    /// Per workflow over the window.
    pub workflows: Vec<WorkflowRate>,
    /// Per workflow and node, slowest p95 first.
    pub latency: Vec<NodeLatency>,
    /// Per workflow and node, most failures first.
    pub failures: Vec<NodeFailures>,
    pub current: CurrentCounts,
}

/// Parses a window into its name and length.
fn window(q: Option<&str>) -> Result<(&'static str, chrono::Duration), Error> {
    match q.unwrap_or("24h") {
        "1h" => Ok(("1h", chrono::Duration::hours(1))),
        "24h" => Ok(("24h", chrono::Duration::hours(24))),
        "7d" => Ok(("7d", chrono::Duration::days(7))),
        _ => Err(Error::invalid("/window", "must be one of 1h, 24h, 7d")),
    }
}

fn rate(succeeded: i64, failed: i64, cancelled: i64) -> f64 {
    let total = succeeded + failed + cancelled;
    if total == 0 {
        0.0
    } else {
        succeeded as f64 / total as f64
    }
}

fn bucket(at: DateTime<Utc>, succeeded: i64, failed: i64, cancelled: i64) -> SuccessBucket {
    SuccessBucket {
        bucket: at,
        succeeded,
        failed,
        cancelled,
        success_rate: rate(succeeded, failed, cancelled),
    }
}

/// The project's metrics over a window (viewers and up). The aggregates
/// lag by up to `MESHHOOK_METRICS_REFRESH_SECS`.
#[utoipa::path(get, path = "/api/v1/projects/{pid}/metrics", tag = "operations",
    params(("pid" = Uuid, Path, description = "project id"), MetricsQuery),
    responses((status = 200, body = ProjectMetrics), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn project_metrics(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Query(q): Query<MetricsQuery>,
) -> Result<Json<ProjectMetrics>, Error> {
    let (span, length) = window(q.window.as_deref())?;
    let since = Utc::now() - length;
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let current = meshhook_db::metrics::current(s.conn(), pid).await?;
    // The views are readable only outside RLS; every read below filters
    // on `pid`, which the caller was just authorised for.
    s.elevate().await?;
    let rows = meshhook_db::metrics::run_buckets(s.conn(), pid, since).await?;
    let latency = meshhook_db::metrics::step_latency(s.conn(), pid, span).await?;
    let hotspots = meshhook_db::metrics::hotspots(s.conn(), pid, span).await?;
    s.commit().await?;

    let mut overall: BTreeMap<DateTime<Utc>, (i64, i64, i64)> = BTreeMap::new();
    let mut per_workflow: BTreeMap<Uuid, Vec<&meshhook_db::metrics::RunBucket>> = BTreeMap::new();
    for r in &rows {
        let e = overall.entry(r.bucket).or_default();
        e.0 += r.succeeded;
        e.1 += r.failed;
        e.2 += r.cancelled;
        per_workflow.entry(r.workflow_id).or_default().push(r);
    }
    let workflows = per_workflow
        .into_iter()
        .map(|(workflow_id, rs)| {
            let (s, f, c) = rs.iter().fold((0, 0, 0), |a, r| {
                (a.0 + r.succeeded, a.1 + r.failed, a.2 + r.cancelled)
            });
            WorkflowRate {
                workflow_id,
                succeeded: s,
                failed: f,
                cancelled: c,
                success_rate: rate(s, f, c),
                buckets: rs
                    .iter()
                    .map(|r| bucket(r.bucket, r.succeeded, r.failed, r.cancelled))
                    .collect(),
            }
        })
        .collect();
    Ok(Json(ProjectMetrics {
        window: span.to_owned(),
        success_rate: overall
            .into_iter()
            .map(|(at, (s, f, c))| bucket(at, s, f, c))
            .collect(),
        workflows,
        latency: latency
            .into_iter()
            .map(|l| NodeLatency {
                workflow_id: l.workflow_id,
                node_id: l.node_id,
                steps: l.steps,
                failed: l.failed,
                p50_ms: l.p50_ms,
                p95_ms: l.p95_ms,
                max_ms: l.max_ms,
            })
            .collect(),
        failures: hotspots
            .into_iter()
            .map(|h| NodeFailures {
                workflow_id: h.workflow_id,
                node_id: (!h.node_id.is_empty()).then_some(h.node_id),
                failures: h.failures,
                last_failed_at: h.last_failed_at,
            })
            .collect(),
        current: CurrentCounts {
            runs: current.by_status.into_iter().collect(),
            oldest_queued_s: current.oldest_queued_s,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(window(None).map(|w| w.0).ok(), Some("24h"));
        assert_eq!(window(Some("7d")).map(|w| w.0).ok(), Some("7d"));
        assert!(window(Some("2h")).is_err());
        assert_eq!(rate(3, 1, 0), 0.75);
        assert_eq!(rate(0, 0, 0), 0.0);
    }
}

//! Alert rules: per project, a rule watches for failed runs, a failure rate
//! over a window, or queue lag, and posts signed alerts (Standard Webhooks)
//! to a URL. The HTTP executor evaluates rules and delivers alerts with
//! retries (`meshhook_executor::alerts`); every attempt is in the rule's
//! delivery log. Members read rules and logs; admins create, change, delete
//! and test them. The signing secret (`whsec_…`) is shown once, on create.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use meshhook_db::alerts::{self, Fields, KINDS, Rule};
use meshhook_db::vault;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody, FieldError};
use crate::extract::{ClientInfo, Json, Path};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(create_alert, list_alerts))
        .routes(routes!(get_alert, update_alert, delete_alert))
        .routes(routes!(test_alert))
        .routes(routes!(list_alert_deliveries))
}

/// A new rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertIn {
    /// 1 to 200 characters.
    pub name: String,
    /// `run_failed`, `failure_rate` or `queue_lag`.
    pub kind: String,
    /// Where alerts are POSTed (http or https).
    pub url: String,
    /// Only this workflow's runs (run_failed, failure_rate).
    pub workflow_id: Option<Uuid>,
    /// failure_rate: the rate (0 < r <= 1, default 0.5); queue_lag: seconds
    /// (default 60); not used by run_failed.
    pub threshold: Option<f64>,
    /// failure_rate: the window in seconds (60..=604800, default 3600).
    pub window_secs: Option<i32>,
    /// failure_rate: finished runs needed in the window (default 10).
    pub min_runs: Option<i32>,
    /// failure_rate and queue_lag: seconds between two alerts (default 900).
    pub cooldown_secs: Option<i32>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A change to a rule: any of its fields (`workflow_id`/`threshold` null
/// clears them).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub workflow_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<f64>)]
    pub threshold: Option<Option<f64>>,
    pub window_secs: Option<i32>,
    pub min_runs: Option<i32>,
    pub cooldown_secs: Option<i32>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub workflow_id: Option<Uuid>,
    pub threshold: Option<f64>,
    pub window_secs: i32,
    pub min_runs: i32,
    pub cooldown_secs: i32,
    pub enabled: bool,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in the answer to create: verify alerts with it (any Standard
    /// Webhooks library). Never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

impl From<Rule> for AlertOut {
    fn from(r: Rule) -> Self {
        AlertOut {
            id: r.id,
            project_id: r.project_id,
            name: r.name,
            kind: r.kind,
            url: r.url,
            workflow_id: r.workflow_id,
            threshold: r.threshold,
            window_secs: r.window_secs,
            min_runs: r.min_runs,
            cooldown_secs: r.cooldown_secs,
            enabled: r.enabled,
            last_fired_at: r.last_fired_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            signing_secret: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDeliveryOut {
    pub id: Uuid,
    /// `alert.run_failed`, `alert.failure_rate`, `alert.queue_lag`, `alert.test`.
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: Value,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<alerts::Delivery> for AlertDeliveryOut {
    fn from(d: alerts::Delivery) -> Self {
        AlertDeliveryOut {
            id: d.id,
            kind: d.kind,
            payload: d.payload,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Checks and completes a rule's fields (422 with every failing path).
fn checked(f: Fields) -> Result<Fields, Error> {
    let mut errors = Vec::new();
    let mut bad = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        });
    };
    let name = f.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        bad("/name", "must be 1 to 200 characters".into());
    }
    if !KINDS.contains(&f.kind.as_str()) {
        bad("/kind", format!("must be one of {}", KINDS.join(", ")));
    }
    match url::Url::parse(&f.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(_) => bad("/url", "must be an absolute http or https URL".into()),
        Err(e) => bad("/url", format!("is not a URL: {e}")),
    }
    let threshold = match (f.kind.as_str(), f.threshold) {
        ("failure_rate", None) => Some(0.5),
        ("failure_rate", Some(t)) if t > 0.0 && t <= 1.0 => Some(t),
        ("failure_rate", Some(_)) => {
            bad(
                "/threshold",
                "a failure rate is above 0 and at most 1".into(),
            );
            None
        }
        ("queue_lag", None) => Some(60.0),
        ("queue_lag", Some(t)) if t > 0.0 && t.is_finite() => Some(t),
        ("queue_lag", Some(_)) => {
            bad(
                "/threshold",
                "queue lag is a positive number of seconds".into(),
            );
            None
        }
        _ => None,
    };
    if f.kind == "queue_lag" && f.workflow_id.is_some() {
        bad("/workflow_id", "queue lag is not per workflow".into());
    }
    if !(60..=604_800).contains(&f.window_secs) {
        bad("/window_secs", "must be 60 to 604800".into());
    }
    if f.min_runs < 1 {
        bad("/min_runs", "must be at least 1".into());
    }
    if !(0..=604_800).contains(&f.cooldown_secs) {
        bad("/cooldown_secs", "must be 0 to 604800".into());
    }
    if !errors.is_empty() {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(
            Error::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", detail)
                .with_errors(errors),
        );
    }
    Ok(Fields {
        name,
        threshold,
        ..f
    })
}

/// A workflow id given for a rule must be one of the project's.
async fn check_workflow(
    s: &mut Session,
    project: Uuid,
    workflow: Option<Uuid>,
) -> Result<(), Error> {
    let Some(w) = workflow else { return Ok(()) };
    let ok: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM meshhook.workflows WHERE id = $1 AND project_id = $2)",
    )
    .bind(w)
    .bind(project)
    .fetch_one(s.conn())
    .await
    .map_err(Error::from)?;
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "/workflow_id",
            "no such workflow in this project",
        ))
    }
}

/// Creates a rule (admins); the answer carries its signing secret, once.
#[utoipa::path(post, path = "/api/v1/projects/{pid}/alerts", tag = "alerts",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = AlertIn,
    responses((status = 201, body = AlertOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_alert(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<AlertIn>,
) -> Result<(StatusCode, Json<AlertOut>), Error> {
    let keyring = super::secrets::keyring(&ctx)?;
    let fields = checked(Fields {
        name: input.name,
        kind: input.kind,
        workflow_id: input.workflow_id,
        threshold: input.threshold,
        window_secs: input.window_secs.unwrap_or(3600),
        min_runs: input.min_runs.unwrap_or(10),
        cooldown_secs: input.cooldown_secs.unwrap_or(900),
        url: input.url,
        enabled: input.enabled.unwrap_or(true),
    })?;
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    check_workflow(&mut s, pid, fields.workflow_id).await?;
    let id = Uuid::now_v7();
    let secret =
        crate::hooks::keys::generate(&crate::hooks::verify::Verification::StandardWebhooks);
    let sealed = vault::seal(&keyring, pid, &alerts::secret_name(id), secret.as_bytes());
    let rule = alerts::create(s.conn(), id, pid, &fields, &sealed).await?;
    s.audit(
        Some(pid),
        "alert.create",
        Some(("alert", id.to_string())),
        json!({ "name": rule.name, "kind": rule.kind }),
    )
    .await?;
    s.commit().await?;
    let mut out = AlertOut::from(rule);
    out.signing_secret = Some(secret.to_string());
    Ok((StatusCode::CREATED, Json(out)))
}

/// The project's rules (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/alerts", tag = "alerts",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = Vec<AlertOut>), (status = 404, body = ErrorBody)))]
async fn list_alerts(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<Vec<AlertOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let list = alerts::list(s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// The rule, if the caller may see it with `role`.
async fn visible(s: &mut Session, id: Uuid, role: Role) -> Result<Rule, Error> {
    let rule = alerts::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("alert"))?;
    s.require(rule.project_id, role, "alert").await?;
    Ok(rule)
}

/// One rule (members).
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = Uuid, Path, description = "alert rule id")),
    responses((status = 200, body = AlertOut), (status = 404, body = ErrorBody)))]
async fn get_alert(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<AlertOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let rule = visible(&mut s, id, Role::Viewer).await?;
    s.commit().await?;
    Ok(Json(rule.into()))
}

/// Changes a rule (admins).
#[utoipa::path(patch, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = Uuid, Path, description = "alert rule id")),
    request_body = AlertPatch,
    responses((status = 200, body = AlertOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_alert(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Json(p): Json<AlertPatch>,
) -> Result<Json<AlertOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let rule = visible(&mut s, id, Role::Admin).await?;
    let kind_changed = p.kind.as_ref().is_some_and(|k| *k != rule.kind);
    let fields = checked(Fields {
        name: p.name.unwrap_or(rule.name),
        // A new kind does not inherit the old kind's threshold.
        threshold: match p.threshold {
            Some(t) => t,
            None if kind_changed => None,
            None => rule.threshold,
        },
        kind: p.kind.unwrap_or(rule.kind),
        workflow_id: p.workflow_id.unwrap_or(rule.workflow_id),
        window_secs: p.window_secs.unwrap_or(rule.window_secs),
        min_runs: p.min_runs.unwrap_or(rule.min_runs),
        cooldown_secs: p.cooldown_secs.unwrap_or(rule.cooldown_secs),
        url: p.url.unwrap_or(rule.url),
        enabled: p.enabled.unwrap_or(rule.enabled),
    })?;
    check_workflow(&mut s, rule.project_id, fields.workflow_id).await?;
    let updated = alerts::update(s.conn(), id, &fields)
        .await?
        .ok_or_else(|| Error::not_found("alert"))?;
    s.audit(
        Some(rule.project_id),
        "alert.update",
        Some(("alert", id.to_string())),
        json!({ "name": updated.name, "kind": updated.kind, "enabled": updated.enabled }),
    )
    .await?;
    s.commit().await?;
    Ok(Json(updated.into()))
}

/// Deletes a rule and its delivery log (admins).
#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = Uuid, Path, description = "alert rule id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_alert(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let rule = visible(&mut s, id, Role::Admin).await?;
    if !alerts::delete(s.conn(), id).await? {
        return Err(Error::not_found("alert"));
    }
    s.audit(
        Some(rule.project_id),
        "alert.delete",
        Some(("alert", id.to_string())),
        json!({ "name": rule.name }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// The delivery to watch in the rule's delivery log.
    pub delivery_id: Uuid,
}

/// Queues a test alert (`alert.test`) for the rule (admins); the executor
/// sends it within seconds, like a real one. Watch its outcome in the
/// delivery log.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/test", tag = "alerts",
    params(("id" = Uuid, Path, description = "alert rule id")),
    responses((status = 202, body = Queued), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_alert(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<Queued>), Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let rule = visible(&mut s, id, Role::Admin).await?;
    let payload = json!({
        "type": "alert.test",
        "rule_id": rule.id,
        "rule_name": rule.name,
        "project_id": rule.project_id,
        "kind": rule.kind,
        "message": "a test alert from MeshHook",
    });
    let delivery_id = alerts::enqueue(s.conn(), &rule, "alert.test", &payload).await?;
    s.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { delivery_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// At most this many, newest first (1..=200, default 50).
    limit: Option<i64>,
}

/// The rule's delivery log, newest first (members).
#[utoipa::path(get, path = "/api/v1/alerts/{id}/deliveries", tag = "alerts",
    params(("id" = Uuid, Path, description = "alert rule id"), DeliveriesQuery),
    responses((status = 200, body = Vec<AlertDeliveryOut>), (status = 404, body = ErrorBody)))]
async fn list_alert_deliveries(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Vec<AlertDeliveryOut>>, Error> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    let mut s = Session::begin(&ctx, caller, client).await?;
    visible(&mut s, id, Role::Viewer).await?;
    let list = alerts::deliveries(s.conn(), id, limit).await?;
    s.commit().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

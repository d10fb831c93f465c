//! `GET /api/v1/projects/{pid}/audit-log`: who did what, when, from where
//! (admins and owners; newest first; keyset-paginated by id).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    OpenApiRouter::new().routes(routes!(audit_log))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// User id or API key id; `null` for the system.
    pub actor_id: Option<Uuid>,
    /// `user|api_key|system|worker`
    pub actor_kind: String,
    /// E.g. `secret.create`, `member.add`, `workflow.publish`, `secret.decrypt`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    /// The client's address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The project's audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/audit-log", tag = "operations",
    params(("pid" = Uuid, Path, description = "project id"), AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn audit_log(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, Error> {
    let limit = super::page_limit(q.limit, 100, 500);
    let before = q
        .cursor
        .as_deref()
        .map(super::cursor::decode::<i64>)
        .transpose()?;
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    let mut rows = meshhook_db::audit::list(s.conn(), pid, before, limit + 1).await?;
    s.commit().await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last().map(|r| super::cursor::encode(&r.id)))
        .flatten();
    Ok(Json(AuditPage {
        items: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                actor_id: r.actor_id,
                actor_kind: r.actor_kind,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                details: r.details,
                ip: r.ip,
                user_agent: r.user_agent,
                at: r.at,
            })
            .collect(),
        next_cursor,
    }))
}

//! PII redaction rules per project (`GET|PUT /api/v1/projects/{pid}/redaction`)
//! and the per-process [`Cache`] of compiled rules that every response
//! about runs goes through (run detail and list, events, dead letters,
//! replay, live frames, the webhook delivery log).
//!
//! Members read the effective rules; admins and owners replace them. The
//! rules are validated (every custom regex compiles) before they are
//! stored; an invalid one is 422 with `errors[].path` (`/patterns/1`).
//!
//! Redaction is for display only: the engine reads the raw values from
//! the database and never sees these rules. Compiled rules are cached per
//! project for [`CACHE_TTL`]; a PUT through this process drops its entry
//! at once, other API processes pick the change up within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use meshhook_core::redact::{self, Redactor};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody, FieldError};
use crate::extract::{ClientInfo, Json, Path};
use meshhook_db::projects;

/// How long compiled rules are reused before they are read again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Projects whose rules are kept (then forgotten all at once).
const CACHE_MAX: usize = 10_000;

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new().routes(routes!(get_redaction, put_redaction))
}

/// A project's redaction rules. Missing fields take their defaults
/// (everything built in on, no custom keys or patterns).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionRules {
    /// Master switch; `false` shows run data raw.
    pub enabled: bool,
    /// Email addresses -> `[redacted:email]`.
    pub emails: bool,
    /// Card numbers (13-19 digits, spaces/dashes allowed, Luhn-valid) -> `[redacted:card]`.
    pub card_numbers: bool,
    /// Bearer/Basic credentials, well-known API key formats, values of
    /// credential-named keys -> `[redacted:token]`.
    pub tokens: bool,
    /// JSON keys (case-insensitive, any depth) whose values become `[redacted]`.
    pub keys: Vec<String>,
    /// Regular expressions (Rust `regex` syntax) whose matches become `[redacted]`.
    pub patterns: Vec<String>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        redact::Rules::default().into()
    }
}

impl From<redact::Rules> for RedactionRules {
    fn from(r: redact::Rules) -> Self {
        RedactionRules {
            enabled: r.enabled,
            emails: r.emails,
            card_numbers: r.card_numbers,
            tokens: r.tokens,
            keys: r.keys,
            patterns: r.patterns,
        }
    }
}

impl From<RedactionRules> for redact::Rules {
    fn from(r: RedactionRules) -> Self {
        redact::Rules {
            enabled: r.enabled,
            emails: r.emails,
            card_numbers: r.card_numbers,
            tokens: r.tokens,
            keys: r.keys,
            patterns: r.patterns,
        }
    }
}

/// Compiled rules per project, shared by every request of the process.
/// Lives in [`crate::Settings`]; leave it `Default`.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<Uuid, (Instant, Arc<Redactor>)>>);

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("redaction::Cache")
    }
}

impl Cache {
    fn get(&self, project_id: Uuid) -> Option<Arc<Redactor>> {
        let c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&project_id)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, r)| r.clone())
    }

    fn put(&self, project_id: Uuid, r: Arc<Redactor>) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= CACHE_MAX && !c.contains_key(&project_id) {
            c.clear();
        }
        c.insert(project_id, (Instant::now(), r));
    }

    /// Drops a project's entry (after its rules changed through this process).
    pub fn forget(&self, project_id: Uuid) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.remove(&project_id);
    }
}

/// Stored rules (`None`: the defaults), parsed.
fn parse_stored(project_id: Uuid, stored: Option<serde_json::Value>) -> redact::Rules {
    match stored.map(serde_json::from_value::<redact::Rules>) {
        None => redact::Rules::default(),
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            // Only a hand-edited row gets here; show less, not more.
            tracing::warn!(%project_id, error = %e, "stored redaction rules do not parse; using the defaults");
            redact::Rules::default()
        }
    }
}

/// The compiled rules of `project_id`, from the cache or read on `conn`
/// (the caller's session, or the service connection once the caller was
/// authorised for the project). A project `conn` cannot see gets the
/// defaults (not cached).
pub async fn redactor(
    ctx: &Context,
    conn: &mut PgConnection,
    project_id: Uuid,
) -> Result<Arc<Redactor>, Error> {
    let cache = &ctx.settings.redaction;
    if let Some(r) = cache.get(project_id) {
        return Ok(r);
    }
    let Some(stored) = projects::redaction(conn, project_id).await? else {
        return Ok(Arc::new(Redactor::default()));
    };
    let rules = parse_stored(project_id, stored);
    let compiled = rules.compile().unwrap_or_else(|issues| {
        tracing::warn!(%project_id, ?issues, "stored redaction rules do not compile; using the defaults");
        Redactor::default()
    });
    let compiled = Arc::new(compiled);
    cache.put(project_id, compiled.clone());
    Ok(compiled)
}

/// The project's effective redaction rules (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/redaction", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = RedactionRules), (status = 404, body = ErrorBody)))]
async fn get_redaction(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<RedactionRules>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let stored = projects::redaction(s.conn(), pid)
        .await?
        .ok_or_else(|| Error::not_found("project"))?;
    s.commit().await?;
    Ok(Json(parse_stored(pid, stored).into()))
}

/// Replaces the project's redaction rules (admins). Custom patterns are
/// checked here: an invalid one is 422 with its path.
#[utoipa::path(put, path = "/api/v1/projects/{pid}/redaction", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = RedactionRules,
    responses(
        (status = 200, body = RedactionRules),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_rules`: `errors[].path` names the key or pattern", body = ErrorBody),
    ))]
async fn put_redaction(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<RedactionRules>,
) -> Result<Json<RedactionRules>, Error> {
    let rules: redact::Rules = input.into();
    if let Err(issues) = rules.compile() {
        let detail = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rules",
            detail,
        )
        .with_errors(
            issues
                .into_iter()
                .map(|i| FieldError {
                    path: i.path,
                    message: i.message,
                })
                .collect(),
        ));
    }
    let stored = serde_json::to_value(&rules).map_err(Error::internal)?;
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    if !projects::set_redaction(s.conn(), pid, Some(&stored)).await? {
        return Err(Error::not_found("project"));
    }
    s.audit(
        Some(pid),
        "project.redaction",
        Some(("project", pid.to_string())),
        // The rules name what is sensitive, not sensitive values.
        json!({ "rules": stored }),
    )
    .await?;
    s.commit().await?;
    ctx.settings.redaction.forget(pid);
    Ok(Json(rules.into()))
}

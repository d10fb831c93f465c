//! The webhook ingress, `POST /hooks/{token}` (also PUT and PATCH).
//!
//! The token is the credential, so this path does not open a per-user RLS
//! session: it looks the webhook up by token on the service connection
//! ([`meshhook_db::webhooks::by_token`], cached for [`CACHE_TTL`] and
//! dropped at once when this process changes the webhook), verifies the
//! signature over the exact raw bytes, applies the per-webhook body limit,
//! rate limit and payload schema, and hands the delivery to the group
//! committer ([`batch`]), which starts the runs of many concurrent
//! deliveries in one transaction and answers each only after the commit.
//! A 2xx therefore always means the run, its `run_created` event and its
//! queue message are durable. Every outcome writes a delivery-log row.

pub mod batch;
pub mod keys;
pub mod limit;
pub mod verify;
pub mod waiters;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use meshhook_db::webhooks::{NewDelivery, Webhook};
use meshhook_metrics::METRICS;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Context, Error};
use verify::Verification;

/// How long a looked-up webhook is reused by this process. Changes made
/// through this process take effect at once; changes made through another
/// API instance within this delay.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// Delivery mode: answer once the run is committed, or wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Mode {
    /// 202 `{run_id}` once the run is durably committed.
    #[default]
    Async,
    /// Wait up to `timeout_ms` for the run to finish and answer with its
    /// terminate output.
    Sync {
        #[serde(default = "default_sync_timeout")]
        timeout_ms: u64,
    },
}

fn default_sync_timeout() -> u64 {
    10_000
}

/// Longest synchronous wait.
pub const MAX_SYNC_TIMEOUT_MS: u64 = 60_000;

/// A token bucket: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// The clock signatures are checked against (tests pin it).
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// A webhook ready to verify deliveries: its row, parsed, with its keys
/// opened.
pub struct Hook {
    pub id: Uuid,
    pub project_id: Uuid,
    pub workflow_id: Uuid,
    pub enabled: bool,
    pub verification: Verification,
    keys: Vec<keys::Open>,
    pub mode: Mode,
    pub rate_limit: Option<RateLimit>,
    schema: Option<jsonschema::Validator>,
    pub max_body_bytes: usize,
}

impl Hook {
    fn from_row(
        row: Webhook,
        keyring: Option<&meshhook_db::vault::Keyring>,
        now: DateTime<Utc>,
    ) -> Result<Hook, Error> {
        let verification: Verification = serde_json::from_value(row.verification).map_err(|e| {
            Error::internal(format!(
                "webhook {} has an unreadable verification: {e}",
                row.id
            ))
        })?;
        let has_keys = row.signing_keys.as_array().is_some_and(|a| !a.is_empty());
        let keys = match (has_keys, keyring) {
            (false, _) => Vec::new(),
            (true, Some(k)) => {
                let mut opened = keys::open(k, row.project_id, row.id, &row.signing_keys, now)?;
                // Standard Webhooks secrets are stored as given
                // (`whsec_<base64>`); the MAC key is the decoded part.
                if matches!(verification, Verification::StandardWebhooks) {
                    for k in &mut opened {
                        let key = std::str::from_utf8(&k.secret)
                            .ok()
                            .and_then(|s| verification.mac_key(s))
                            .unwrap_or_default();
                        k.secret = zeroize::Zeroizing::new(key);
                    }
                }
                opened
            }
            (true, None) => {
                return Err(Error::unavailable(
                    "the secrets vault is not configured (MESHHOOK_KEK)",
                ));
            }
        };
        let schema = match row.payload_schema {
            Some(s) => Some(jsonschema::validator_for(&s).map_err(|e| {
                Error::internal(format!("webhook {} has an invalid schema: {e}", row.id))
            })?),
            None => None,
        };
        Ok(Hook {
            id: row.id,
            project_id: row.project_id,
            workflow_id: row.workflow_id,
            enabled: row.enabled,
            verification,
            keys,
            mode: serde_json::from_value(row.mode).unwrap_or_default(),
            rate_limit: row.rate_limit.and_then(|r| serde_json::from_value(r).ok()),
            schema,
            max_body_bytes: usize::try_from(row.max_body_bytes).unwrap_or(usize::MAX),
        })
    }

    /// The key material valid at `now`.
    fn valid_keys(&self, now: DateTime<Utc>) -> Vec<&[u8]> {
        self.keys
            .iter()
            .filter(|k| k.expires_at.is_none_or(|e| e > now))
            .map(|k| k.secret.as_slice())
            .collect()
    }

    /// The newest key (for `/test`).
    pub fn newest_key(&self) -> Option<&[u8]> {
        self.keys.first().map(|k| k.secret.as_slice())
    }
}

/// Process-wide ingress state: the webhook cache, the rate limiter, the
/// group committer and the sync waiters. Lives in [`crate::Settings`];
/// leave it `Default`.
#[derive(Default)]
pub struct Runtime {
    cache: Mutex<HashMap<String, (Instant, Arc<Hook>)>>,
    pub limiter: limit::Limiter,
    batcher: OnceLock<batch::Handle>,
    pub waiters: waiters::Waiters,
    /// Where this process serves HTTP (set by `serve`), for `/test`.
    pub local_addr: OnceLock<SocketAddr>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hooks::Runtime")
    }
}

impl Runtime {
    /// Forgets a webhook (after a change through this process).
    pub fn forget(&self, webhook_id: Uuid) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|_, (_, h)| h.id != webhook_id);
        self.limiter.forget(webhook_id);
    }

    fn batcher(&self, ctx: &Context) -> &batch::Handle {
        self.batcher
            .get_or_init(|| batch::spawn(ctx.pool.clone(), batch::Options::from_env()))
    }
}

/// The webhook of `token`, from the cache or the database.
pub async fn lookup(ctx: &Context, token: &str) -> Result<Option<Arc<Hook>>, Error> {
    let rt = &ctx.settings.hooks;
    {
        let c = rt.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, h)) = c.get(token)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(h.clone()));
        }
    }
    let mut conn = ctx.pool.acquire().await?;
    let Some(row) = meshhook_db::webhooks::by_token(&mut conn, token).await? else {
        return Ok(None);
    };
    drop(conn);
    let hook = Arc::new(Hook::from_row(
        row,
        ctx.settings.keyring.as_deref(),
        ctx.settings.clock.now(),
    )?);
    let mut c = rt.cache.lock().unwrap_or_else(|p| p.into_inner());
    if c.len() > 10_000 {
        c.clear();
    }
    c.insert(token.to_owned(), (Instant::now(), hook.clone()));
    Ok(Some(hook))
}

/// `202 {run_id}` (async), the terminate output (sync), `200 {run_id,
/// duplicate: true}` (repeat), or an error.
#[utoipa::path(post, path = "/hooks/{token}", tag = "hooks",
    params(("token" = String, Path, description = "the webhook's secret token")),
    request_body(content = Value, description = "any JSON, form or text body"),
    responses(
        (status = 202, description = "accepted: `{run_id}`, durably committed"),
        (status = 200, description = "a repeat (`{run_id, duplicate: true}`) or a sync run's output"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ))]
pub async fn ingress(
    State(ctx): State<Context>,
    Path(token): Path<String>,
    client: crate::extract::ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let received_at = Utc::now();
    let hook = match lookup(&ctx, &token).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            METRICS.webhook_deliveries.inc("unknown_webhook");
            return Error::not_found("webhook").into_response();
        }
        Err(e) => {
            METRICS.webhook_deliveries.inc("unavailable");
            return e.into_response();
        }
    };
    let remote = client.ip;
    let log = Logger {
        ctx: &ctx,
        hook: &hook,
        received_at,
        started,
        remote: remote.map(|ip| ip.to_string()),
    };
    match accept(&ctx, &hook, &headers, query.as_deref(), body, &log).await {
        Ok(res) => res,
        Err((verdict, err, key)) => {
            METRICS.webhook_deliveries.inc(verdict);
            log.write(verdict, err.status, None, key, Some(err.detail.clone()))
                .await;
            let limit = err.status == StatusCode::TOO_MANY_REQUESTS;
            let mut res = err.into_response();
            if limit && let Some(r) = hook.rate_limit {
                ctx.settings
                    .hooks
                    .limiter
                    .headers(hook.id, r, res.headers_mut());
            }
            res
        }
    }
}

/// Writes delivery-log rows through the group committer, without waiting.
struct Logger<'a> {
    ctx: &'a Context,
    hook: &'a Hook,
    received_at: DateTime<Utc>,
    started: Instant,
    remote: Option<String>,
}

impl Logger<'_> {
    fn row(
        &self,
        verdict: &'static str,
        status: StatusCode,
        run_id: Option<Uuid>,
        key: Option<String>,
        detail: Option<String>,
    ) -> NewDelivery {
        NewDelivery {
            webhook_id: self.hook.id,
            project_id: self.hook.project_id,
            received_at: self.received_at,
            verdict,
            status_code: i32::from(status.as_u16()),
            run_id,
            dedupe_key: key,
            detail,
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            remote_addr: self.remote.clone(),
        }
    }

    async fn write(
        &self,
        verdict: &'static str,
        status: StatusCode,
        run_id: Option<Uuid>,
        key: Option<String>,
        detail: Option<String>,
    ) {
        let row = self.row(verdict, status, run_id, key, detail);
        self.ctx.settings.hooks.batcher(self.ctx).log(row).await;
    }
}

type Refused = (&'static str, Error, Option<String>);

fn refused(verdict: &'static str, err: Error) -> Refused {
    (verdict, err, None)
}

/// Headers never copied into `trigger.headers`: credentials and signatures.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "webhook-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
];

async fn accept(
    ctx: &Context,
    hook: &Arc<Hook>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
    log: &Logger<'_>,
) -> Result<Response, Refused> {
    if !hook.enabled {
        return Err(refused(
            "disabled",
            Error::conflict("webhook_disabled", "this webhook is disabled"),
        ));
    }
    let too_large = || {
        refused(
            "too_large",
            Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body is larger than this webhook's limit of {} bytes",
                    hook.max_body_bytes
                ),
            ),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > hook.max_body_bytes)
    {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, hook.max_body_bytes)
        .await
        .map_err(|_| too_large())?;
    let now = ctx.settings.clock.now();
    let keys = hook.valid_keys(now);
    verify::verify(&hook.verification, &keys, headers, &bytes, now.timestamp()).map_err(|r| {
        refused(
            "bad_signature",
            Error::new(StatusCode::UNAUTHORIZED, r.code, r.detail),
        )
    })?;
    if let Some(rl) = hook.rate_limit
        && let Err(wait) = ctx.settings.hooks.limiter.take(hook.id, rl)
    {
        return Err(refused(
            "rate_limited",
            Error::too_many_requests(
                wait.as_secs_f64().ceil() as u64,
                "this webhook's rate limit is exhausted; retry later",
            ),
        ));
    }
    let payload = parse_body(headers, &bytes).map_err(|e| refused("invalid_payload", e))?;
    if let Some(schema) = &hook.schema {
        let errors: Vec<crate::error::FieldError> = schema
            .iter_errors(&payload)
            .take(20)
            .map(|e| crate::error::FieldError {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        if !errors.is_empty() {
            return Err(refused(
                "invalid_payload",
                Error::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_payload",
                    "the payload does not match this webhook's schema",
                )
                .with_errors(errors),
            ));
        }
    }
    let key = dedupe_key(&hook.verification, headers, &payload);
    let trigger = meshhook_orchestrator::engine::trigger(
        payload,
        trigger_headers(headers),
        trigger_query(query),
    );
    let sync = match hook.mode {
        Mode::Sync { timeout_ms } => {
            Some(Duration::from_millis(timeout_ms.min(MAX_SYNC_TIMEOUT_MS)))
        }
        Mode::Async => None,
    };
    let req = batch::Start {
        webhook_id: hook.id,
        project_id: hook.project_id,
        workflow_id: hook.workflow_id,
        trigger,
        key: key.clone(),
        delivery: (sync.is_none())
            .then(|| log.row("accepted", StatusCode::ACCEPTED, None, key.clone(), None)),
    };
    let started = ctx
        .settings
        .hooks
        .batcher(ctx)
        .start(req)
        .await
        .map_err(|e| (e.verdict(), e.into_error(), key.clone()))?;
    if started.duplicate {
        METRICS.webhook_deliveries.inc("duplicate");
        if sync.is_some() {
            log.write("duplicate", StatusCode::OK, Some(started.run_id), key, None)
                .await;
        }
        return Ok((
            StatusCode::OK,
            axum::Json(json!({ "run_id": started.run_id, "duplicate": true })),
        )
            .into_response());
    }
    let Some(timeout) = sync else {
        METRICS.webhook_deliveries.inc("accepted");
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({ "run_id": started.run_id })),
        )
            .into_response());
    };
    let outcome = ctx
        .settings
        .hooks
        .waiters
        .wait(&ctx.pool, started.run_id, timeout)
        .await;
    let (status, body) = match outcome {
        Some((status, output, error)) => sync_answer(started.run_id, &status, output, error),
        None => (StatusCode::ACCEPTED, json!({ "run_id": started.run_id })),
    };
    let verdict = if status == StatusCode::ACCEPTED {
        "accepted"
    } else {
        "completed"
    };
    METRICS.webhook_deliveries.inc(verdict);
    log.write(verdict, status, Some(started.run_id), key, None)
        .await;
    Ok((status, axum::Json(body)).into_response())
}

/// The sync answer: the terminate node's output as the body; the status
/// is the output's `status` field when it is an integer 100..=599, else
/// 200 for a succeeded run and 500 for a failed or cancelled one.
pub fn sync_answer(
    run_id: Uuid,
    status: &str,
    output: Option<Value>,
    error: Option<Value>,
) -> (StatusCode, Value) {
    let from_output = output
        .as_ref()
        .and_then(|o| o.get("status"))
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok());
    let default = if status == "succeeded" {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = match (status, output) {
        ("succeeded", o) => o.unwrap_or(Value::Null),
        (_, Some(o)) if !o.is_null() => o,
        _ => json!({ "run_id": run_id, "status": status, "error": error }),
    };
    (from_output.unwrap_or(default), body)
}

fn is_json(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The body as `trigger.body`: JSON (by content type, or sniffed when
/// none), form fields as an object, anything else as text (base64 when not
/// UTF-8).
fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, Error> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let value = if is_json(ct) {
        serde_json::from_slice::<Value>(bytes).map_err(|e| {
            Error::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        })?
    } else if ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        let mut map = serde_json::Map::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        Value::Object(map)
    } else if ct.is_empty() {
        serde_json::from_slice::<Value>(bytes).unwrap_or_else(|_| text(bytes))
    } else {
        text(bytes)
    };
    if has_nul(&value) {
        return Err(Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
            "text must not contain NUL characters (\\u0000)",
        ));
    }
    Ok(value)
}

fn text(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => {
            use base64::Engine as _;
            json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn trigger_headers(headers: &HeaderMap) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let n = name.as_str();
        if DROPPED_HEADERS.contains(&n) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            if v.contains('\0') {
                continue;
            }
            match map.get_mut(n) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(v);
                }
                _ => {
                    map.insert(n.to_owned(), Value::String(v.to_owned()));
                }
            }
        }
    }
    Value::Object(map)
}

fn trigger_query(query: Option<&str>) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !k.contains('\0') && !v.contains('\0') {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    Value::Object(map)
}

/// The delivery's dedupe key: `Idempotency-Key`, `webhook-id`,
/// `X-GitHub-Delivery`, or (Stripe webhooks) the event's `id`.
fn dedupe_key(v: &Verification, headers: &HeaderMap, payload: &Value) -> Option<String> {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .map(|s| s.replace('\0', ""))
    };
    h("idempotency-key")
        .map(|k| format!("idempotency-key:{k}"))
        .or_else(|| h("webhook-id").map(|k| format!("webhook-id:{k}")))
        .or_else(|| h("x-github-delivery").map(|k| format!("github:{k}")))
        .or_else(|| {
            matches!(v, Verification::Stripe)
                .then(|| payload.get("id").and_then(Value::as_str))
                .flatten()
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(|k| format!("stripe:{k}"))
        })
}

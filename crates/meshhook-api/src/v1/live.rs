//! Live feeds over websockets: `GET /api/v1/runs/{id}/live` (one run's
//! events, from `?after=<seq>` on) and `GET /api/v1/projects/{pid}/live`
//! (every run's events in a project, from now on).
//!
//! - **Auth**: `?access_token=` (or the `Authorization` header) is checked
//!   before the upgrade (401/404 as HTTP answers); without one, the first
//!   message must be the token (plain text or `{"access_token": ...}`) within
//!   10 s, and a failure closes the socket with code 4401 or 4404. Tenant
//!   rules are the REST ones: viewer or higher, other tenants' ids are 404.
//! - **Frames**: one JSON object per event, `{run_id, seq, type, data, at}`,
//!   in seq order per run, without gaps or duplicates: rows are read by seq
//!   after each notification (and on a 15 s timer for a run feed), never
//!   taken from the notification. Resume after a reconnect with
//!   `?after=<last seq seen>` (or `?from_seq=<first seq wanted>`).
//! - **Redaction**: each frame's `data` goes through the project's PII
//!   redaction rules ([`super::redaction`]) before it is sent.
//! - **Backpressure**: a frame the client does not take within 5 s closes
//!   the socket (code 1008, "too slow"); nothing is buffered for it.
//! - **Shutdown**: when the server starts its graceful shutdown (SIGTERM),
//!   every socket is closed with 1001 (going away), so clients reconnect to
//!   another instance and resume with `?after`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use meshhook_core::redact::Redactor;
use meshhook_db::live::{Feed, Notice};
use meshhook_db::run_views;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OnceCell, broadcast};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::{self, Caller};
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Path};

/// A frame the client does not take within this is the end of it.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a socket may take to send its token as the first message.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// A run feed refetches this often even without notifications.
const RESYNC_EVERY: Duration = Duration::from_secs(15);
/// Rows read per fetch.
const PAGE: i64 = 500;

/// The process's event listener, started by the first live socket, and
/// the signal that closes every socket when the server shuts down.
#[derive(Clone, Default)]
pub struct Hub(std::sync::Arc<OnceCell<Feed>>, CancellationToken);

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("started", &self.0.initialized())
            .field("closing", &self.1.is_cancelled())
            .finish()
    }
}

impl Hub {
    /// Closes every live socket with 1001 (going away): called when the
    /// server starts its graceful shutdown, so that clients reconnect
    /// elsewhere (resuming with `?after`) instead of holding it open.
    pub fn close_all(&self) {
        self.1.cancel();
    }

    async fn feed(&self, ctx: &Context) -> Result<Feed, Error> {
        let feed = self
            .0
            .get_or_try_init(|| Feed::start(&ctx.pool))
            .await
            .map_err(|e| Error::internal(format!("starting the live feed: {e}")))?;
        Ok(feed.clone())
    }
}

/// The close reason sent when the server shuts down.
const GOING_AWAY: &str = "server shutting down; reconnect with ?after to resume";

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(run_live))
        .routes(routes!(project_live))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// The access token or API key (else the `Authorization` header, else
    /// the first message).
    access_token: Option<String>,
    /// Run feeds: send events with `seq` greater than this first (default 0,
    /// the whole log).
    after: Option<i64>,
    /// Run feeds: send events with `seq` from this one on (inclusive; the
    /// same as `after=from_seq-1`). When both are given, `after` wins.
    from_seq: Option<i64>,
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// What the socket streams once authorised.
#[derive(Debug, Clone, Copy)]
enum Target {
    Run { run_id: Uuid, after: i64 },
    Project { project_id: Uuid },
}

/// Authenticates `token` and checks the caller may watch `target`.
/// Returns the target's project.
async fn authorise(
    ctx: &Context,
    client: ClientInfo,
    token: &str,
    target: Target,
) -> Result<Uuid, Error> {
    let caller: Caller = auth::authenticate(ctx, token).await?;
    let mut s = Session::begin(ctx, caller, client).await?;
    let project_id = match target {
        Target::Run { run_id, .. } => {
            let project = run_views::project_of(s.conn(), run_id).await?;
            s.require_on(project, Role::Viewer, "run").await?.0
        }
        Target::Project { project_id } => {
            s.require(project_id, Role::Viewer, "project").await?;
            project_id
        }
    };
    s.commit().await?;
    Ok(project_id)
}

async fn upgrade(
    ctx: Context,
    client: ClientInfo,
    headers: HeaderMap,
    token: Option<String>,
    target: Target,
    ws: WebSocketUpgrade,
) -> Result<Response, Error> {
    let token = token.or_else(|| header_token(&headers));
    let project_id = match &token {
        Some(token) => Some(authorise(&ctx, client.clone(), token, target).await?),
        None => None,
    };
    Ok(ws.on_upgrade(move |mut socket| async move {
        let project_id = match project_id {
            Some(p) => p,
            None => match first_message_auth(&ctx, client, &mut socket, target).await {
                Ok(p) => p,
                Err(e) => {
                    let code = if e.status == axum::http::StatusCode::NOT_FOUND {
                        4404
                    } else {
                        4401
                    };
                    close(&mut socket, code, e.detail.clone()).await;
                    return;
                }
            },
        };
        let feed = match ctx.settings.live.feed(&ctx).await {
            Ok(f) => f,
            Err(e) => {
                close(&mut socket, 1011, e.detail.clone()).await;
                return;
            }
        };
        match target {
            Target::Run { run_id, after } => {
                stream_run(&ctx, socket, &feed, project_id, run_id, after).await
            }
            Target::Project { project_id } => stream_project(&ctx, socket, &feed, project_id).await,
        }
    }))
}

async fn first_message_auth(
    ctx: &Context,
    client: ClientInfo,
    socket: &mut WebSocket,
    target: Target,
) -> Result<Uuid, Error> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        Ok(_) => {
            return Err(Error::unauthorized(
                "the first message must be the access token",
            ));
        }
        Err(_) => return Err(Error::unauthorized("no access token within 10 s")),
    };
    let token = match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::unauthorized("send {\"access_token\": \"...\"} or the bare token")
            })?,
        Err(_) => text.trim().to_owned(),
    };
    authorise(ctx, client, &token, target).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let reason: String = reason.chars().take(120).collect();
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// Sends one event frame, its data redacted; `false` when the client is
/// gone or too slow.
async fn send_frame(
    socket: &mut WebSocket,
    redactor: &Redactor,
    run_id: Uuid,
    row: run_views::EventRow,
) -> bool {
    let mut data = row.data;
    redactor.redact_in_place(&mut data);
    let frame = json!({
        "run_id": run_id,
        "seq": row.seq,
        "type": row.kind,
        "data": data,
        "at": row.at,
    });
    let sent = tokio::time::timeout(
        SEND_TIMEOUT,
        socket.send(Message::Text(frame.to_string().into())),
    )
    .await;
    match sent {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            close(socket, 1008, "too slow: frames were not read".into()).await;
            false
        }
    }
}

/// Sends `run_id`'s events after `*after`, moving it. `false` when the
/// socket is done. Reads on the service connection: the socket's caller
/// was authorised for `project_id` when it connected.
async fn send_new(
    ctx: &Context,
    socket: &mut WebSocket,
    project_id: Uuid,
    run_id: Uuid,
    after: &mut i64,
) -> bool {
    loop {
        let read = async {
            let mut conn = ctx.pool.acquire().await.map_err(Error::from)?;
            let rows = run_views::events(&mut conn, run_id, *after, PAGE).await?;
            let redactor = super::redaction::redactor(ctx, &mut conn, project_id).await?;
            Ok::<_, Error>((rows, redactor))
        };
        let (rows, redactor) = match read.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%run_id, error = ?e, "live feed: reading events failed");
                close(
                    socket,
                    1011,
                    "reading events failed; reconnect with ?after".into(),
                )
                .await;
                return false;
            }
        };
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= PAGE;
        for row in rows {
            let seq = row.seq;
            if !send_frame(socket, &redactor, run_id, row).await {
                return false;
            }
            *after = seq;
        }
        if !full {
            return true;
        }
    }
}

/// What the client said; `false` when it is gone.
fn client_still_there(msg: Option<Result<Message, axum::Error>>) -> bool {
    !matches!(msg, None | Some(Err(_)) | Some(Ok(Message::Close(_))))
}

async fn stream_run(
    ctx: &Context,
    mut socket: WebSocket,
    feed: &Feed,
    project_id: Uuid,
    run_id: Uuid,
    mut after: i64,
) {
    // Subscribe before reading the backlog: nothing falls in between.
    let mut rx = feed.subscribe();
    if !send_new(ctx, &mut socket, project_id, run_id, &mut after).await {
        return;
    }
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.reset();
    loop {
        let fetch = tokio::select! {
            notice = rx.recv() => match notice {
                Ok(Notice::Appended { run_id: r, last_seq, .. }) => r == run_id && last_seq > after,
                Ok(Notice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => {
                if !client_still_there(msg) {
                    return;
                }
                false
            }
            _ = resync.tick() => true,
            () = ctx.settings.live.1.cancelled() => {
                close(&mut socket, 1001, GOING_AWAY.into()).await;
                return;
            }
        };
        if fetch && !send_new(ctx, &mut socket, project_id, run_id, &mut after).await {
            return;
        }
    }
}

async fn stream_project(ctx: &Context, mut socket: WebSocket, feed: &Feed, project_id: Uuid) {
    /// Runs whose position is remembered (then forgotten all at once).
    const KNOWN: usize = 10_000;
    let mut rx = feed.subscribe();
    // Notices can arrive out of commit order (the ingest path notifies
    // after its commit, asynchronously), so a run first heard of is read
    // from its last event recorded before this socket connected (less a
    // margin for transactions that began earlier and commit later), not
    // from the notice's first seq: nothing appended since is skipped.
    let connected = chrono::Utc::now() - chrono::Duration::seconds(2);
    let mut seen: HashMap<Uuid, i64> = HashMap::new();
    loop {
        let work: Vec<(Uuid, Option<i64>)> = tokio::select! {
            notice = rx.recv() => match notice {
                Ok(Notice::Appended { run_id, project_id: p, last_seq, .. }) if p == project_id => {
                    match seen.get(&run_id).copied() {
                        Some(from) if last_seq <= from => Vec::new(),
                        from => vec![(run_id, from)],
                    }
                }
                Ok(Notice::Appended { .. }) => Vec::new(),
                Ok(Notice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    seen.iter().map(|(r, s)| (*r, Some(*s))).collect()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => {
                if !client_still_there(msg) {
                    return;
                }
                Vec::new()
            }
            () = ctx.settings.live.1.cancelled() => {
                close(&mut socket, 1001, GOING_AWAY.into()).await;
                return;
            }
        };
        for (run_id, from) in work {
            let mut after = match from {
                Some(after) => after,
                None => match start_of(ctx, run_id, connected).await {
                    Ok(after) => after,
                    Err(e) => {
                        tracing::warn!(%run_id, error = ?e, "live feed: reading events failed");
                        close(&mut socket, 1011, "reading events failed; reconnect".into()).await;
                        return;
                    }
                },
            };
            if !send_new(ctx, &mut socket, project_id, run_id, &mut after).await {
                return;
            }
            if seen.len() >= KNOWN && !seen.contains_key(&run_id) {
                seen.clear();
            }
            seen.insert(run_id, after);
        }
    }
}

/// Where a project feed starts a run it first hears of: after the run's
/// last event recorded before the socket connected.
async fn start_of(
    ctx: &Context,
    run_id: Uuid,
    connected: chrono::DateTime<chrono::Utc>,
) -> Result<i64, Error> {
    let mut conn = ctx.pool.acquire().await.map_err(Error::from)?;
    Ok(run_views::last_seq_before(&mut conn, run_id, connected).await?)
}

/// One run's events as they are appended (websocket).
#[utoipa::path(get, path = "/api/v1/runs/{id}/live", tag = "runs",
    params(("id" = Uuid, Path, description = "run id"), LiveQuery),
    responses((status = 101, description = "websocket: one `{run_id, seq, type, data, at}` frame per event"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn run_live(
    State(ctx): State<Context>,
    client: ClientInfo,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(q): Query<LiveQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, Error> {
    let after = q
        .after
        .or_else(|| q.from_seq.map(|from| from.saturating_sub(1)))
        .unwrap_or(0)
        .max(0);
    upgrade(
        ctx,
        client,
        headers,
        q.access_token,
        Target::Run { run_id: id, after },
        ws,
    )
    .await
}

/// Every run's events in a project as they are appended (websocket).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/live", tag = "runs",
    params(("pid" = Uuid, Path, description = "project id"), LiveQuery),
    responses((status = 101, description = "websocket: one `{run_id, seq, type, data, at}` frame per event"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn project_live(
    State(ctx): State<Context>,
    client: ClientInfo,
    headers: HeaderMap,
    Path(pid): Path<Uuid>,
    Query(q): Query<LiveQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, Error> {
    upgrade(
        ctx,
        client,
        headers,
        q.access_token,
        Target::Project { project_id: pid },
        ws,
    )
    .await
}

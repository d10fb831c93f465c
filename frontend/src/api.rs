//! The only module that talks HTTP. Every call the SPA makes to the MeshHook
//! API goes through a function here, so pages stay free of URLs, headers and
//! status-code handling. The SPA is served by the API itself, so paths are
//! relative to the page's origin.

//!
//! Endpoint groups live in submodules (`api::auth`, `api::projects`, ...),
//! each with the API's answer shapes as plain structs. Ids and timestamps
//! stay strings: the SPA only displays and passes them back.

pub mod alerts;
pub mod auth;
pub mod json;
pub mod live;
pub mod metrics;
pub mod projects;
pub mod runs;
pub mod secrets;
pub mod webhooks;
pub mod workflows;

use std::cell::RefCell;
use std::fmt;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestCache, RequestInit, Response};

use self::json::FromJson;

/// Why a call did not produce what the page asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No HTTP response at all: the server is down, the network is gone, or
    /// the browser refused the request.
    Network(String),
    /// The server answered with a non-success status.
    Status {
        /// HTTP status code.
        status: u16,
        /// The API's machine-readable `code`, when the body had one.
        code: Option<String>,
        /// Human-readable explanation: the API's `detail`, or the raw body.
        detail: String,
    },
}

impl Error {
    /// What to tell the user: the API's `detail` (or why there was no
    /// answer), without the status line.
    pub fn detail(&self) -> String {
        match self {
            Self::Network(reason) => format!("Cannot reach the server ({reason})"),
            Self::Status { status, detail, .. } if detail.is_empty() => {
                format!("The server answered HTTP {status}")
            }
            Self::Status { detail, .. } => detail.clone(),
        }
    }

    /// A short technical line under the detail: `HTTP 422 · invalid_body`.
    pub fn context(&self) -> Option<String> {
        match self {
            Self::Network(_) => None,
            Self::Status { status, code, .. } => Some(match code {
                Some(code) => format!("HTTP {status} · {code}"),
                None => format!("HTTP {status}"),
            }),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(reason) => write!(f, "Cannot reach the server ({reason})"),
            Self::Status { status, detail, .. } if detail.is_empty() => {
                write!(f, "The server answered HTTP {status}")
            }
            Self::Status { status, detail, .. } => {
                write!(f, "The server answered HTTP {status}: {detail}")
            }
        }
    }
}

/// The API's error body: `{"code": "...", "detail": "..."}`.
struct ErrorBody {
    code: String,
    detail: String,
}

impl FromJson for ErrorBody {
    fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let f = json::Fields::of(value)?;
        Ok(ErrorBody {
            code: f.string("code")?,
            detail: f.string("detail")?,
        })
    }
}

/// `localStorage` key of the signed-in [`Session`] (JSON).
pub const SESSION_KEY: &str = "meshhook.session";

/// Name of the `window` event fired whenever [`store_session`] changes the
/// stored session (sign-in, refresh, sign-out), so the shell can follow.
/// Other tabs see the change as a `storage` event instead.
pub const SESSION_EVENT: &str = "meshhook-session";

/// The signed-in user's tokens, kept in `localStorage` so a reload stays
/// signed in. Shape = the API's auth answer (`/api/v1/auth/login`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// HS256 access token (1 h).
    pub access_token: String,
    /// Rotating refresh token.
    pub refresh_token: String,
    /// Who is signed in.
    pub user: User,
}

/// `{id, email}` of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// User id (uuid).
    pub id: String,
    /// Email address.
    pub email: String,
}

impl FromJson for Session {
    fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let f = json::Fields::of(value)?;
        Ok(Session {
            access_token: f.string("access_token")?,
            refresh_token: f.string("refresh_token")?,
            user: f.decode("user")?,
        })
    }
}

impl FromJson for User {
    fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let f = json::Fields::of(value)?;
        Ok(User {
            id: f.string("id")?,
            email: f.string("email")?,
        })
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored session, if any (a corrupt entry counts as none).
pub fn session() -> Option<Session> {
    let raw = storage()?.get_item(SESSION_KEY).ok()??;
    parse(&raw).ok()
}

/// Stores (or with `None`, forgets) the session, then fires
/// [`SESSION_EVENT`] on `window`.
pub fn store_session(session: Option<&Session>) {
    let Some(storage) = storage() else { return };
    match session.and_then(|s| serde_json::to_string(s).ok()) {
        Some(raw) => {
            let _ = storage.set_item(SESSION_KEY, &raw);
        }
        None => {
            let _ = storage.remove_item(SESSION_KEY);
        }
    }
    if let Some(window) = web_sys::window()
        && let Ok(event) = web_sys::Event::new(SESSION_EVENT)
    {
        let _ = window.dispatch_event(&event);
    }
}

/// HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// `GET path` with the session's bearer token, decoding a JSON answer.
pub async fn get<T: FromJson>(path: &str) -> Result<T, Error> {
    parse(&call_text(Method::Get, path, None).await?)
}

/// `POST path` with a JSON body, decoding a JSON answer.
pub async fn post<B: Serialize, T: FromJson>(path: &str, body: &B) -> Result<T, Error> {
    let body = to_value(body)?;
    parse(&call_text(Method::Post, path, Some(body)).await?)
}

/// `PUT path` with a JSON body, decoding a JSON answer.
pub async fn put<B: Serialize, T: FromJson>(path: &str, body: &B) -> Result<T, Error> {
    let body = to_value(body)?;
    parse(&call_text(Method::Put, path, Some(body)).await?)
}

/// `PATCH path` with a JSON body, decoding a JSON answer.
pub async fn patch<B: Serialize, T: FromJson>(path: &str, body: &B) -> Result<T, Error> {
    let body = to_value(body)?;
    parse(&call_text(Method::Patch, path, Some(body)).await?)
}

/// `DELETE path`; the answer body (if any) is ignored.
pub async fn delete(path: &str) -> Result<(), Error> {
    call_text(Method::Delete, path, None).await.map(|_| ())
}

fn to_value<B: Serialize>(body: &B) -> Result<serde_json::Value, Error> {
    serde_json::to_value(body)
        .map_err(|e| Error::Network(format!("cannot encode the request: {e}")))
}

/// Decodes an answer's text (empty: JSON `null`).
fn parse<T: FromJson>(text: &str) -> Result<T, Error> {
    T::from_json(&parse_value(text)?).map_err(|e| Error::Network(format!("unexpected answer: {e}")))
}

/// An answer's text as JSON (empty: `null`). Not generic: every answer
/// shares this one parser.
fn parse_value(text: &str) -> Result<serde_json::Value, Error> {
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| Error::Network(format!("unexpected answer: {e}")))
}

/// One API call with the stored session's bearer token; the answer's
/// text. On a 401 the refresh token is exchanged once
/// (`/api/v1/auth/refresh`) and the call repeated; if that fails too the
/// session is forgotten and the 401 returned (the shell then shows the
/// sign-in page). Not generic, and boxed: every typed call shares this one
/// piece of wasm and only adds its decoding.
pub fn call_text(
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> LocalBoxFuture<'static, Result<String, Error>> {
    let path = path.to_owned();
    async move {
        let used = session();
        let first = send(method, &path, body.as_ref(), used.as_ref()).await?;
        let response = if first.status() == 401 && used.is_some() {
            match renew(used.as_ref()).await {
                Some(session) => send(method, &path, body.as_ref(), Some(&session)).await?,
                None => first,
            }
        } else {
            first
        };
        text_of(response).await
    }
    .boxed_local()
}

/// The access token to open a live feed with: the stored one, or — when
/// the server refused `rejected` (close code 4401) and no other call has
/// renewed it since — a renewed one. `None`: signed out.
pub async fn live_token(rejected: Option<&str>) -> Option<String> {
    let current = session()?;
    if rejected != Some(current.access_token.as_str()) {
        return Some(current.access_token);
    }
    renew(Some(&current)).await.map(|s| s.access_token)
}

/// A call without credentials and without the refresh dance: sign-up,
/// sign-in and sign-out, where a 401 means wrong credentials.
pub async fn call_anonymous<T: FromJson>(
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<T, Error> {
    let response = send(method, path, body.as_ref(), None).await?;
    parse(&text_of(response).await?)
}

/// The text of a success, else the error it stands for.
async fn text_of(response: Response) -> Result<String, Error> {
    if !response.ok() {
        return Err(status_error(response).await);
    }
    body_text(&response).await
}

async fn send(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    session: Option<&Session>,
) -> Result<Response, Error> {
    let headers = Headers::new().map_err(js_error)?;
    if let Some(session) = session {
        let bearer = format!("Bearer {}", session.access_token);
        headers.set("Authorization", &bearer).map_err(js_error)?;
    }
    let init = RequestInit::new();
    init.set_method(method.as_str());
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(js_error)?;
        init.set_body(&JsValue::from_str(&body.to_string()));
    }
    init.set_headers(&headers);
    fetch(path, &init).await
}

/// `fetch(path, init)` with the HTTP cache bypassed: every answer is fresh.
async fn fetch(path: &str, init: &RequestInit) -> Result<Response, Error> {
    init.set_cache(RequestCache::NoStore);
    let window = web_sys::window().ok_or_else(|| Error::Network("no window".into()))?;
    let answer = JsFuture::from(window.fetch_with_str_and_init(path, init))
        .await
        .map_err(js_error)?;
    answer
        .dyn_into::<Response>()
        .map_err(|_| Error::Network("fetch did not return a Response".into()))
}

/// A response's body as text.
async fn body_text(response: &Response) -> Result<String, Error> {
    let promise = response.text().map_err(js_error)?;
    let text = JsFuture::from(promise).await.map_err(js_error)?;
    text.as_string()
        .ok_or_else(|| Error::Network("the answer is not text".into()))
}

/// A JavaScript exception (a failed fetch: offline, refused) as an error.
fn js_error(value: JsValue) -> Error {
    let message = value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "the request failed".into());
    Error::Network(message)
}

thread_local! {
    /// The refresh in flight, shared by every call that got a 401 meanwhile:
    /// refresh tokens rotate, and presenting one twice revokes the whole
    /// session family, so two parallel refreshes would sign the user out.
    static RENEWING: RefCell<Option<Shared<LocalBoxFuture<'static, Option<Session>>>>> =
        const { RefCell::new(None) };
}

/// A session to retry with after a call sent with `used` got a 401: the
/// stored one when another call (or tab) has renewed it since, else the
/// result of the one shared refresh.
async fn renew(used: Option<&Session>) -> Option<Session> {
    let current = session()?;
    if used.is_none_or(|used| used.access_token != current.access_token) {
        return Some(current);
    }
    let shared = RENEWING.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| refresh().boxed_local().shared())
            .clone()
    });
    let renewed = shared.await;
    RENEWING.with(|slot| slot.borrow_mut().take());
    renewed
}

/// Exchanges the stored refresh token for a new session and stores it;
/// forgets the session when the server refuses.
pub async fn refresh() -> Option<Session> {
    let current = session()?;
    let body = serde_json::json!({ "refresh_token": current.refresh_token });
    let response = send(Method::Post, "/api/v1/auth/refresh", Some(&body), None)
        .await
        .ok()?;
    if !response.ok() {
        store_session(None);
        return None;
    }
    let fresh: Session = parse(&body_text(&response).await.ok()?).ok()?;
    store_session(Some(&fresh));
    Some(fresh)
}

/// `GET /readyz`: succeeds when the database is reachable and migrations are
/// applied.
pub async fn readiness() -> Result<(), Error> {
    let response = fetch("/readyz", &RequestInit::new()).await?;
    if response.ok() {
        Ok(())
    } else {
        Err(status_error(response).await)
    }
}

/// Turns a non-success response into an [`Error::Status`], keeping the API's
/// `code`/`detail` when the body is the standard error shape, else a short
/// plain-text body, else the status text (never an HTML error page).
async fn status_error(response: Response) -> Error {
    let status = response.status();
    let status_text = response.status_text();
    let body = body_text(&response).await.unwrap_or_default();
    if let Ok(ErrorBody { code, detail }) = parse::<ErrorBody>(&body) {
        return Error::Status {
            status,
            code: Some(code),
            detail,
        };
    }
    let body = body.trim();
    let detail = if !body.is_empty() && !body.starts_with('<') && body.len() <= 200 {
        body.to_owned()
    } else {
        status_text
    };
    Error::Status {
        status,
        code: None,
        detail,
    }
}

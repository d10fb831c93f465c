//! The only module that talks HTTP. Every call the SPA makes to the MeshHook
//! API goes through a function here, so pages stay free of URLs, headers and
//! status-code handling. The SPA is served by the API itself, so paths are
//! relative to the page's origin.

// The session and call helpers are the shared base of the pages being built
// (sign-in, workflows, editor); remove this allow once they use them.
#![allow(dead_code)]

use std::fmt;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use web_sys::RequestCache;

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
#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    detail: String,
}

/// `localStorage` key of the signed-in [`Session`] (JSON).
pub const SESSION_KEY: &str = "meshhook.session";

/// The signed-in user's tokens, kept in `localStorage` so a reload stays
/// signed in. Shape = the API's auth answer (`/api/v1/auth/login`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// HS256 access token (1 h).
    pub access_token: String,
    /// Rotating refresh token.
    pub refresh_token: String,
    /// Who is signed in.
    pub user: User,
}

/// `{id, email}` of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id (uuid).
    pub id: String,
    /// Email address.
    pub email: String,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored session, if any (a corrupt entry counts as none).
pub fn session() -> Option<Session> {
    let raw = storage()?.get_item(SESSION_KEY).ok()??;
    serde_json::from_str(&raw).ok()
}

/// Stores (or with `None`, forgets) the session.
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

/// `GET path` with the session's bearer token, decoding a JSON answer.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Error> {
    call(Method::Get, path, None).await
}

/// `POST path` with a JSON body, decoding a JSON answer.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, Error> {
    call(Method::Post, path, Some(to_value(body)?)).await
}

/// `PUT path` with a JSON body, decoding a JSON answer.
pub async fn put<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, Error> {
    call(Method::Put, path, Some(to_value(body)?)).await
}

/// `PATCH path` with a JSON body, decoding a JSON answer.
pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, Error> {
    call(Method::Patch, path, Some(to_value(body)?)).await
}

/// `DELETE path`; the answer body (if any) is ignored.
pub async fn delete(path: &str) -> Result<(), Error> {
    call::<serde_json::Value>(Method::Delete, path, None)
        .await
        .map(|_| ())
}

fn to_value<B: Serialize>(body: &B) -> Result<serde_json::Value, Error> {
    serde_json::to_value(body)
        .map_err(|e| Error::Network(format!("cannot encode the request: {e}")))
}

/// One API call with the stored session's bearer token. On a 401 the
/// refresh token is exchanged once (`/api/v1/auth/refresh`) and the call
/// repeated; if that fails too the session is forgotten and the 401 returned
/// (the shell then shows the sign-in page). An empty success body decodes
/// as JSON `null`.
pub async fn call<T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<T, Error> {
    let first = send(method, path, body.as_ref(), session().as_ref()).await?;
    let response = if first.status() == 401 {
        match refresh().await {
            Some(session) => send(method, path, body.as_ref(), Some(&session)).await?,
            None => first,
        }
    } else {
        first
    };
    if !response.ok() {
        return Err(status_error(response).await);
    }
    let text = response
        .text()
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
    let text = if text.trim().is_empty() {
        "null"
    } else {
        &text
    };
    serde_json::from_str(text).map_err(|e| Error::Network(format!("unexpected answer: {e}")))
}

async fn send(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    session: Option<&Session>,
) -> Result<Response, Error> {
    let mut builder: RequestBuilder = match method {
        Method::Get => Request::get(path),
        Method::Post => Request::post(path),
        Method::Put => Request::put(path),
        Method::Patch => Request::patch(path),
        Method::Delete => Request::delete(path),
    }
    .cache(RequestCache::NoStore);
    if let Some(session) = session {
        builder = builder.header("Authorization", &format!("Bearer {}", session.access_token));
    }
    let request = match body {
        Some(body) => builder.json(body),
        None => builder.build(),
    }
    .map_err(|e| Error::Network(e.to_string()))?;
    request
        .send()
        .await
        .map_err(|e| Error::Network(e.to_string()))
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
    let fresh: Session = response.json().await.ok()?;
    store_session(Some(&fresh));
    Some(fresh)
}

/// `GET /readyz`: succeeds when the database is reachable and migrations are
/// applied.
pub async fn readiness() -> Result<(), Error> {
    let response = Request::get("/readyz")
        .cache(RequestCache::NoStore)
        .send()
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
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
    let body = response.text().await.unwrap_or_default();
    if let Ok(ErrorBody { code, detail }) = serde_json::from_str::<ErrorBody>(&body) {
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

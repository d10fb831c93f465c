//! The only module that talks HTTP. Every call the SPA makes to the MeshHook
//! API goes through a function here, so pages stay free of URLs, headers and
//! status-code handling. The SPA is served by the API itself, so paths are
//! relative to the page's origin.

use std::fmt;

use gloo_net::http::{Request, Response};
use serde::Deserialize;
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

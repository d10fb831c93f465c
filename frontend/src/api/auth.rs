//! Sign-up, sign-in, sign-out and "who am I".

use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, Method, Session, call_anonymous, get, session, store_session};

/// Shortest password the API accepts (`auth::PASSWORD_CHARS`).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// `GET /api/v1/me`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    /// User (or API key) id.
    pub id: String,
    /// The user's email; absent for API keys.
    pub email: Option<String>,
}

/// `POST /api/v1/auth/signup`; stores the new session.
pub async fn sign_up(email: &str, password: &str) -> Result<Session, Error> {
    let body = json!({ "email": email, "password": password });
    let session: Session = call_anonymous(Method::Post, "/api/v1/auth/signup", Some(body)).await?;
    store_session(Some(&session));
    Ok(session)
}

/// `POST /api/v1/auth/login`; stores the session.
pub async fn sign_in(email: &str, password: &str) -> Result<Session, Error> {
    let body = json!({ "email": email, "password": password });
    let session: Session = call_anonymous(Method::Post, "/api/v1/auth/login", Some(body)).await?;
    store_session(Some(&session));
    Ok(session)
}

/// Forgets the session at once, and returns the (best effort) revocation of
/// its refresh token on the server for the caller to spawn.
pub fn sign_out() -> impl Future<Output = ()> + 'static {
    let current = session();
    store_session(None);
    async move {
        if let Some(current) = current {
            let body = json!({ "refresh_token": current.refresh_token });
            let _ = call_anonymous::<serde_json::Value>(
                Method::Post,
                "/api/v1/auth/logout",
                Some(body),
            )
            .await;
        }
    }
}

/// `GET /api/v1/me`.
pub async fn me() -> Result<Me, Error> {
    get("/api/v1/me").await
}

impl FromJson for Me {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Me {
            id: f.string("id")?,
            email: f.opt_string("email"),
        })
    }
}

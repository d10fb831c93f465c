//! Authentication: who is calling.
//!
//! - **Access tokens** are HS256 JWTs with Supabase-shaped claims (`sub`,
//!   `email`, `role: "authenticated"`, `aud: "authenticated"`, `exp`,
//!   `iat`), signed with `MESHHOOK_JWT_SECRET`. The algorithm is pinned:
//!   `alg: none`, other algorithms, a wrong signature or audience, a
//!   missing or past `exp` are all 401. A Supabase project's token signed
//!   with the same secret is just as valid; its user gets a row here on
//!   first sight (id = `sub`).
//! - **Refresh tokens** are 32 random bytes, stored as SHA-256, single use
//!   and rotating (see `v1::auth`).
//! - **Project API keys** are `mh_` + 32 random bytes (base64url), stored as
//!   SHA-256; a key acts in one project with its own role.
//! - **Passwords** are argon2id PHC strings, hashed off the async runtime.
//!
//! The [`Caller`] extractor turns `Authorization: Bearer ...` into the
//! claims that [`crate::access::Session`] hands to PostgreSQL. It composes
//! those claims itself: nothing from a token but `sub` and `email` reaches
//! the database, so a token cannot smuggle in `mh_project`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Context;
use crate::access::Role;
use crate::error::Error;

/// The audience and role of every access token.
pub const AUDIENCE: &str = "authenticated";
/// Access tokens live this long.
pub const ACCESS_TTL: Duration = Duration::from_secs(3600);
/// Refresh tokens live this long (each use replaces the token).
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Prefix of project API keys.
pub const API_KEY_PREFIX: &str = "mh_";
/// Accepted password lengths, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=1024;

/// The HS256 secret (`MESHHOOK_JWT_SECRET`). `Debug` never shows it.
#[derive(Clone)]
pub struct JwtSecret(Arc<Vec<u8>>);

impl JwtSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        JwtSecret(Arc::new(secret.into()))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// Access-token claims as issued.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: Uuid,
    email: &'a str,
    role: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    iss: &'a str,
}

/// Access-token claims as read (other claims are ignored).
#[derive(Debug, Deserialize)]
struct ReadClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs an access token for a user.
pub fn issue_access_token(secret: &JwtSecret, user_id: Uuid, email: &str) -> Result<String, Error> {
    let iat = now_secs();
    let claims = IssuedClaims {
        sub: user_id,
        email,
        role: AUDIENCE,
        aud: AUDIENCE,
        iat,
        exp: iat + ACCESS_TTL.as_secs(),
        iss: "meshhook",
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.bytes()),
    )
    .map_err(Error::internal)
}

/// Verifies an access token: HS256 only, audience `authenticated`, `exp`
/// required and in the future, `role` (when present) `authenticated`.
/// Returns the user id and email.
pub fn verify_access_token(
    secret: &JwtSecret,
    token: &str,
) -> Result<(Uuid, Option<String>), Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    validation.leeway = 30;
    let data = jsonwebtoken::decode::<ReadClaims>(
        token,
        &DecodingKey::from_secret(secret.bytes()),
        &validation,
    )
    .map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        Error::unauthorized(match e.kind() {
            K::ExpiredSignature => "the access token has expired; refresh it",
            K::InvalidAudience => "the access token is not for this audience",
            K::InvalidSignature => "the access token's signature is invalid",
            K::InvalidAlgorithm => "the access token must be signed with HS256",
            _ => "the access token is invalid",
        })
    })?;
    if data.claims.role.as_deref().is_some_and(|r| r != AUDIENCE) {
        return Err(Error::unauthorized(
            "the access token's role must be `authenticated`",
        ));
    }
    let id = Uuid::parse_str(&data.claims.sub)
        .map_err(|_| Error::unauthorized("the access token's subject is not a user id"))?;
    Ok((id, data.claims.email.filter(|e| !e.trim().is_empty())))
}

/// A fresh random token (32 bytes, base64url) with an optional prefix.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", B64URL.encode(bytes))
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Hashes a password with argon2id (default parameters: 19 MiB, t=2,
/// p=1), on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(Error::internal)?
}

/// A hash of a random password: verifying against it when the email is
/// unknown makes a wrong email cost as much as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(random_token("").as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
});

/// Checks `password` against `hash` (or against a dummy when `None`), on
/// the blocking pool.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let Some(stored) = hash.or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let ok = argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    })
    .await
    .map_err(Error::internal)
}

/// Login attempt limits: failed attempts per email and per client address
/// within a window.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_email: 10,
            per_ip: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Fixed-window failure counters by key, in memory (per API process: with
/// N API processes an attacker gets N times the budget, which still
/// bounds guessing to a few per second).
#[derive(Default)]
pub struct Limiter {
    map: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    /// `Err(seconds to wait)` when `key` has `max` failures in the window.
    pub fn check(&self, key: &str, max: u32, window: Duration) -> Result<(), u64> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((start, n)) if *n >= max && start.elapsed() < window => {
                Err((window - start.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure.
    pub fn fail(&self, key: &str, window: Duration) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = map.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Forgets `key` (after a successful login).
    pub fn reset(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// In-memory state shared by every request of one API process: rate-limit
/// counters and the set of user ids known to have a row. Leave it
/// `Default`.
#[derive(Clone, Default)]
pub struct Runtime(Arc<RuntimeInner>);

#[derive(Default)]
struct RuntimeInner {
    login_by_email: Limiter,
    login_by_ip: Limiter,
    known_users: Mutex<HashSet<Uuid>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Runtime")
    }
}

impl Runtime {
    pub fn login_by_email(&self) -> &Limiter {
        &self.0.login_by_email
    }

    pub fn login_by_ip(&self) -> &Limiter {
        &self.0.login_by_ip
    }

    fn is_known_user(&self, id: Uuid) -> bool {
        self.0
            .known_users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    fn remember_user(&self, id: Uuid) {
        let mut set = self.0.known_users.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() > 100_000 {
            set.clear();
        }
        set.insert(id);
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user (built-in or Supabase).
    User { id: Uuid, email: String },
    /// A project API key.
    ApiKey {
        id: Uuid,
        project_id: Uuid,
        role: Role,
    },
}

/// An authenticated caller and the claims its database session runs with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    claims: Value,
}

impl Caller {
    fn user(id: Uuid, email: String) -> Self {
        let claims = json!({ "sub": id, "email": email, "role": AUDIENCE, "aud": AUDIENCE });
        Caller {
            principal: Principal::User { id, email },
            claims,
        }
    }

    fn api_key(id: Uuid, project_id: Uuid, role: Role) -> Self {
        let claims = json!({
            "sub": id, "role": AUDIENCE, "aud": AUDIENCE,
            "mh_project": project_id, "mh_role": role.as_str(),
        });
        Caller {
            principal: Principal::ApiKey {
                id,
                project_id,
                role,
            },
            claims,
        }
    }

    /// The claims for `request.jwt.claims`.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// The user's id, when the caller is a user.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::ApiKey { .. } => None,
        }
    }

    /// `(actor_id, actor_kind)` for the audit log.
    pub fn actor(&self) -> (Uuid, &'static str) {
        match &self.principal {
            Principal::User { id, .. } => (*id, "user"),
            Principal::ApiKey { id, .. } => (*id, "api_key"),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            Error::unauthorized("send `Authorization: Bearer <access token or API key>`")
        })?
        .to_str()
        .map_err(|_| Error::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Error::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// Authenticates a bearer token (access token or API key).
pub async fn authenticate(ctx: &Context, token: &str) -> Result<Caller, Error> {
    if let Some(rest) = token.strip_prefix(API_KEY_PREFIX)
        && !rest.contains('.')
    {
        let mut conn = ctx.pool.acquire().await?;
        let key = meshhook_db::api_keys::authenticate(&mut conn, &token_hash(token))
            .await?
            .ok_or_else(|| Error::unauthorized("the API key is unknown or revoked"))?;
        let role = Role::parse(&key.role).ok_or_else(|| {
            Error::internal(format!("API key {} has role {:?}", key.id, key.role))
        })?;
        return Ok(Caller::api_key(key.id, key.project_id, role));
    }
    let secret = ctx
        .settings
        .jwt_secret
        .as_ref()
        .ok_or_else(|| Error::unavailable("MESHHOOK_JWT_SECRET is not configured"))?;
    let (id, email) = verify_access_token(secret, token)?;
    // A Supabase user without an email (phone sign-in) still needs one here.
    let email = email.unwrap_or_else(|| format!("{id}@users.invalid"));
    if !ctx.settings.runtime.is_known_user(id) {
        let mut conn = ctx.pool.acquire().await?;
        if !meshhook_db::users::ensure_external(&mut conn, id, &email).await? {
            return Err(Error::unauthorized(
                "the token's email belongs to another account here",
            ));
        }
        ctx.settings.runtime.remember_user(id);
    }
    Ok(Caller::user(id, email))
}

impl FromRequestParts<Context> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &Context) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(ctx, bearer(parts)?).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Checks the password rules: 8 to 1024 characters, not only spaces.
pub fn check_password(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !PASSWORD_CHARS.contains(&n) {
        return Err(Error::invalid(
            "/password",
            format!(
                "must be {} to {} characters long",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ));
    }
    if password.trim().is_empty() {
        return Err(Error::invalid("/password", "must not be only spaces"));
    }
    Ok(())
}

/// Normalises and checks an email: trimmed, at most 254 characters, one
/// `@` with text on both sides, no spaces or control characters.
pub fn check_email(email: &str) -> Result<String, Error> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email.to_owned())
    } else {
        Err(Error::invalid("/email", "is not a valid email address"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret() -> JwtSecret {
        JwtSecret::new("a-test-secret-of-at-least-32-bytes!!")
    }

    #[test]
    fn issued_tokens_verify() {
        let id = Uuid::new_v4();
        let t = issue_access_token(&secret(), id, "a@example.com").unwrap();
        let (sub, email) = verify_access_token(&secret(), &t).unwrap();
        assert_eq!(sub, id);
        assert_eq!(email.as_deref(), Some("a@example.com"));
        let other = JwtSecret::new("another-secret-of-at-least-32-bytes!");
        assert!(verify_access_token(&other, &t).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let header = B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = B64URL.encode(
            format!(
                r#"{{"sub":"{}","aud":"authenticated","role":"authenticated","exp":{}}}"#,
                Uuid::new_v4(),
                now_secs() + 600
            )
            .as_bytes(),
        );
        assert!(verify_access_token(&secret(), &format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn limiter_counts_failures_per_key() {
        let l = Limiter::default();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check("k", 3, w).is_ok());
            l.fail("k", w);
        }
        let wait = l.check("k", 3, w).unwrap_err();
        assert!((1..=61).contains(&wait));
        assert!(l.check("other", 3, w).is_ok());
        l.reset("k");
        assert!(l.check("k", 3, w).is_ok());
    }

    #[test]
    fn emails_and_passwords() {
        assert_eq!(check_email("  a@b.c ").unwrap(), "a@b.c");
        assert!(check_email("a b@c").is_err());
        assert!(check_email("@c").is_err());
        assert!(check_email("a@").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("        ").is_err());
        assert!(check_password(&"x".repeat(1025)).is_err());
        assert!(check_password("long enough").is_ok());
    }
}

//! `/api/v1/auth/*` and `/api/v1/me`: the built-in auth server.
//!
//! Sign-up and login answer an access token (1 h) and a refresh token.
//! A refresh token is single use: refreshing revokes it and issues its
//! successor in the same family; presenting a revoked one again revokes
//! the whole family (a stolen token is then useless to both parties and
//! the user signs in again). Logout revokes the family.
//!
//! Login failures are uniform (`invalid_credentials`, whether the email or
//! the password was wrong, at the same cost) and counted per email and per
//! client address; past the limit the answer is 429 with `Retry-After`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::Session;
use crate::auth::{self, Caller, JwtSecret, Principal};
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Json};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIn {
    pub email: String,
    /// 8 to 1024 characters.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokensOut {
    /// HS256 JWT, valid for `expires_in` seconds.
    pub access_token: String,
    /// Single use; exchange it at `/api/v1/auth/refresh`.
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    /// The user's id, or the API key's id.
    pub id: Uuid,
    /// The user's email (absent for API keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// For API keys: the key's project and role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::access::Role>,
}

fn secret(ctx: &Context) -> Result<&JwtSecret, Error> {
    ctx.settings
        .jwt_secret
        .as_ref()
        .ok_or_else(|| Error::unavailable("MESHHOOK_JWT_SECRET is not configured"))
}

/// Issues an access token and a refresh token of `family` (a new family
/// when `None`), in the caller's transaction.
async fn issue(
    conn: &mut sqlx::PgConnection,
    secret: &JwtSecret,
    user: meshhook_db::users::User,
    family: Option<Uuid>,
) -> Result<TokensOut, Error> {
    let refresh_token = auth::random_token("");
    let expires_at =
        Utc::now() + chrono::Duration::from_std(auth::REFRESH_TTL).map_err(Error::internal)?;
    meshhook_db::users::insert_refresh_token(
        conn,
        user.id,
        family.unwrap_or_else(Uuid::new_v4),
        &auth::token_hash(&refresh_token),
        expires_at,
    )
    .await?;
    Ok(TokensOut {
        access_token: auth::issue_access_token(secret, user.id, &user.email)?,
        refresh_token,
        token_type: "bearer",
        expires_in: auth::ACCESS_TTL.as_secs(),
        user: UserOut {
            id: user.id,
            email: user.email,
        },
    })
}

/// Creates an account with email and password.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", security(()),
    request_body = CredentialsIn,
    responses(
        (status = 201, body = TokensOut),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "invalid email or password", body = ErrorBody),
    ))]
async fn signup(
    State(ctx): State<Context>,
    Json(input): Json<CredentialsIn>,
) -> Result<(StatusCode, Json<TokensOut>), Error> {
    let secret = secret(&ctx)?;
    let email = auth::check_email(&input.email)?;
    auth::check_password(&input.password)?;
    let hash = auth::hash_password(input.password).await?;
    let mut tx = ctx.pool.begin().await?;
    let user = meshhook_db::users::create(&mut tx, &email, &hash).await?;
    let tokens = issue(&mut tx, secret, user, None).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = CredentialsIn,
    responses(
        (status = 200, body = TokensOut),
        (status = 401, description = "`invalid_credentials`: wrong email or password", body = ErrorBody),
        (status = 429, description = "too many failed attempts; see `Retry-After`", body = ErrorBody),
    ))]
async fn login(
    State(ctx): State<Context>,
    client: ClientInfo,
    Json(input): Json<CredentialsIn>,
) -> Result<Json<TokensOut>, Error> {
    let secret = secret(&ctx)?;
    let limits = &ctx.settings.login_limits;
    let runtime = &ctx.settings.runtime;
    let email_key = input.email.trim().to_lowercase();
    let ip_key = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    for (limiter, key, max) in [
        (runtime.login_by_email(), &email_key, limits.per_email),
        (runtime.login_by_ip(), &ip_key, limits.per_ip),
    ] {
        if let Err(wait) = limiter.check(key, max, limits.window) {
            return Err(Error::too_many_requests(
                wait,
                "too many failed sign-in attempts; try again later",
            ));
        }
    }
    let found = if input.password.chars().count() <= *auth::PASSWORD_CHARS.end() {
        let mut conn = ctx.pool.acquire().await?;
        meshhook_db::users::credentials(&mut conn, input.email.trim()).await?
    } else {
        None
    };
    let hash = found.as_ref().and_then(|c| c.password_hash.clone());
    let ok = auth::verify_password(input.password, hash).await?;
    let Some(user) = found.filter(|_| ok) else {
        runtime.login_by_email().fail(&email_key, limits.window);
        runtime.login_by_ip().fail(&ip_key, limits.window);
        tracing::info!(ip = %ip_key, "failed sign-in");
        return Err(Error::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ));
    };
    runtime.login_by_email().reset(&email_key);
    let mut tx = ctx.pool.begin().await?;
    let tokens = issue(
        &mut tx,
        secret,
        meshhook_db::users::User {
            id: user.id,
            email: user.email,
        },
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Exchanges a refresh token for new tokens (the old one is revoked).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshIn,
    responses(
        (status = 200, body = TokensOut),
        (status = 401, description = "unknown, expired or reused refresh token (reuse revokes the whole family)", body = ErrorBody),
    ))]
async fn refresh(
    State(ctx): State<Context>,
    Json(input): Json<RefreshIn>,
) -> Result<Json<TokensOut>, Error> {
    let secret = secret(&ctx)?;
    let mut tx = ctx.pool.begin().await?;
    let Some(token) =
        meshhook_db::users::lock_refresh_token(&mut tx, &auth::token_hash(&input.refresh_token))
            .await?
    else {
        return Err(Error::unauthorized("the refresh token is unknown"));
    };
    if token.revoked_at.is_some() {
        // Reuse: whoever holds the family now, nobody keeps it.
        let revoked = meshhook_db::users::revoke_refresh_family(&mut tx, token.family_id).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %token.user_id, revoked, "refresh token reused; family revoked");
        return Err(Error::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_reused",
            "this refresh token was already used; every session it belongs to is now signed out",
        ));
    }
    if token.expires_at <= Utc::now() {
        return Err(Error::unauthorized(
            "the refresh token has expired; sign in again",
        ));
    }
    meshhook_db::users::revoke_refresh_token(&mut tx, token.id).await?;
    let user = meshhook_db::users::get(&mut tx, token.user_id)
        .await?
        .ok_or_else(|| Error::unauthorized("the account no longer exists"))?;
    let tokens = issue(&mut tx, secret, user, Some(token.family_id)).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Revokes a refresh token and every token of its family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(()),
    request_body = RefreshIn,
    responses((status = 204, description = "signed out (also when the token was unknown)")))]
async fn logout(
    State(ctx): State<Context>,
    Json(input): Json<RefreshIn>,
) -> Result<StatusCode, Error> {
    let mut tx = ctx.pool.begin().await?;
    if let Some(token) =
        meshhook_db::users::lock_refresh_token(&mut tx, &auth::token_hash(&input.refresh_token))
            .await?
    {
        meshhook_db::users::revoke_refresh_family(&mut tx, token.family_id).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the bearer is.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses(
        (status = 200, body = MeOut),
        (status = 401, body = ErrorBody),
    ))]
async fn me(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
) -> Result<Json<MeOut>, Error> {
    match caller.principal.clone() {
        Principal::User { id, email } => {
            let mut s = Session::begin(&ctx, caller, client).await?;
            let email = meshhook_db::users::get(s.conn(), id)
                .await?
                .map_or(email, |u| u.email);
            s.commit().await?;
            Ok(Json(MeOut {
                id,
                email: Some(email),
                kind: "user",
                project_id: None,
                role: None,
            }))
        }
        Principal::ApiKey {
            id,
            project_id,
            role,
        } => Ok(Json(MeOut {
            id,
            email: None,
            kind: "api_key",
            project_id: Some(project_id),
            role: Some(role),
        })),
    }
}

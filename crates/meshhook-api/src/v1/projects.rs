//! Projects, their members and their API keys.
//!
//! Roles: any member reads the project and its roster; admins rename the
//! project, manage members and API keys; only owners grant, change or
//! remove the owner role, and delete the project. A project never loses
//! its last owner. API keys act with at most the admin role and never
//! create projects.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::{self, Caller};
use crate::error::{Error, ErrorBody};
use crate::extract::{ClientInfo, Json, Path};
use meshhook_db::{api_keys, projects};

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectIn {
    /// 1 to 200 characters.
    pub name: String,
}

/// A change to a project: any of its fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    /// 1 to 200 characters.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Days finished runs (with their events) and webhook delivery-log
    /// rows are kept: 1 to 3650 (default 30).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<i64>)]
    pub retention_days: Option<Option<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectOut {
    pub id: Uuid,
    pub name: String,
    /// Days finished runs and delivery-log rows are kept.
    pub retention_days: i32,
    /// The caller's role in the project.
    pub role: Option<Role>,
    pub created_at: DateTime<Utc>,
}

impl From<projects::Project> for ProjectOut {
    fn from(p: projects::Project) -> Self {
        ProjectOut {
            id: p.id,
            name: p.name,
            retention_days: p.retention_days,
            role: p.role.as_deref().and_then(Role::parse),
            created_at: p.created_at,
        }
    }
}

/// Creates a project; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects",
    request_body = ProjectIn,
    responses(
        (status = 201, body = ProjectOut),
        (status = 403, description = "API keys cannot create projects", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_project(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Json(input): Json<ProjectIn>,
) -> Result<(StatusCode, Json<ProjectOut>), Error> {
    let name = super::check_name("/name", &input.name)?;
    if caller.user_id().is_none() {
        return Err(Error::forbidden("API keys cannot create projects"));
    }
    let mut s = Session::begin(&ctx, caller, client).await?;
    let p = projects::create(s.conn(), &name).await?;
    s.audit(
        Some(p.id),
        "project.create",
        Some(("project", p.id.to_string())),
        json!({ "name": name }),
    )
    .await?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// The projects the caller belongs to, with its role in each.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectOut>)))]
async fn list_projects(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
) -> Result<Json<Vec<ProjectOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let list = projects::list(s.conn()).await?;
    s.commit().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// One project (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = ProjectOut), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<ProjectOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let p = projects::get(s.conn(), pid)
        .await?
        .ok_or_else(|| Error::not_found("project"))?;
    s.commit().await?;
    Ok(Json(p.into()))
}

/// Renames a project and/or sets its retention (admins).
#[utoipa::path(patch, path = "/api/v1/projects/{pid}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = ProjectPatch,
    responses((status = 200, body = ProjectOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_project(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<ProjectPatch>,
) -> Result<Json<ProjectOut>, Error> {
    let name = match input.name {
        None => None,
        Some(None) => return Err(Error::invalid("/name", "must be a string")),
        Some(Some(n)) => Some(super::check_name("/name", &n)?),
    };
    let days = match input.retention_days {
        None => None,
        Some(None) => {
            return Err(Error::invalid(
                "/retention_days",
                "must be a whole number of days from 1 to 3650",
            ));
        }
        Some(Some(d)) => Some(
            i32::try_from(d)
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    Error::invalid(
                        "/retention_days",
                        "retention_days must be a whole number of days from 1 to 3650",
                    )
                })?,
        ),
    };
    if name.is_none() && days.is_none() {
        return Err(Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "nothing to change: give name and/or retention_days",
        ));
    }
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    if let Some(name) = &name {
        if !projects::rename(s.conn(), pid, name).await? {
            return Err(Error::not_found("project"));
        }
        s.audit(
            Some(pid),
            "project.rename",
            Some(("project", pid.to_string())),
            json!({ "name": name }),
        )
        .await?;
    }
    if let Some(days) = days {
        if !projects::set_retention(s.conn(), pid, days).await? {
            return Err(Error::not_found("project"));
        }
        s.audit(
            Some(pid),
            "project.retention",
            Some(("project", pid.to_string())),
            json!({ "retention_days": days }),
        )
        .await?;
    }
    let p = projects::get(s.conn(), pid)
        .await?
        .ok_or_else(|| Error::not_found("project"))?;
    s.commit().await?;
    Ok(Json(p.into()))
}

/// Deletes a project and everything in it (owners).
#[utoipa::path(delete, path = "/api/v1/projects/{pid}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_project(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<StatusCode, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Owner, "project").await?;
    let name = projects::get(s.conn(), pid).await?.map(|p| p.name);
    if !projects::delete(s.conn(), pid).await? {
        return Err(Error::not_found("project"));
    }
    // The project's own audit rows go with it (cascade); this one is kept
    // outside any project, which only the service role can write.
    s.elevate().await?;
    s.audit(
        None,
        "project.delete",
        Some(("project", pid.to_string())),
        json!({ "name": name }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// Members ----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    /// The user's email; they must have an account.
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<projects::Member> for MemberOut {
    type Error = Error;

    fn try_from(m: projects::Member) -> Result<Self, Error> {
        Ok(MemberOut {
            role: Role::parse(&m.role)
                .ok_or_else(|| Error::internal(format!("member role {:?}", m.role)))?,
            user_id: m.user_id,
            email: m.email,
            created_at: m.created_at,
        })
    }
}

/// The project's members (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/members", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = Vec<MemberOut>), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<Vec<MemberOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let list = projects::members(s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(
        list.into_iter()
            .map(MemberOut::try_from)
            .collect::<Result<_, _>>()?,
    ))
}

/// Adds a user (by email) to the project (admins; owners to add an owner).
#[utoipa::path(post, path = "/api/v1/projects/{pid}/members", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = MemberIn,
    responses(
        (status = 201, body = MemberOut),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`already_member`", body = ErrorBody),
        (status = 422, description = "`unknown_user`: no account with this email", body = ErrorBody),
    ))]
async fn add_member(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<MemberIn>,
) -> Result<(StatusCode, Json<MemberOut>), Error> {
    let email = auth::check_email(&input.email)?;
    let mut s = Session::begin(&ctx, caller, client).await?;
    let mine = s.require(pid, Role::Admin, "project").await?;
    if input.role == Role::Owner && mine < Role::Owner {
        return Err(Error::forbidden("only an owner can add an owner"));
    }
    // Looking a user up by email crosses tenants (they are in no shared
    // project yet): done as the service role, after the admin check.
    s.elevate().await?;
    let user_id = meshhook_db::users::id_by_email(s.conn(), &email).await?;
    s.restrict().await?;
    let user_id = user_id.ok_or_else(|| {
        Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_user",
            "no account uses this email; ask them to sign up first",
        )
    })?;
    projects::add_member(s.conn(), pid, user_id, input.role.as_str()).await?;
    s.audit(
        Some(pid),
        "member.add",
        Some(("user", user_id.to_string())),
        json!({ "email": email, "role": input.role }),
    )
    .await?;
    let m = projects::member(s.conn(), pid, user_id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(m.try_into()?)))
}

/// Checks that changing `target`'s role away from owner (or removing them)
/// leaves the project an owner, and that only owners touch owners.
async fn guard_owner_change(
    s: &mut Session,
    pid: Uuid,
    mine: Role,
    current: Role,
    new: Option<Role>,
) -> Result<(), Error> {
    let touches_owner = current == Role::Owner || new == Some(Role::Owner);
    if touches_owner && mine < Role::Owner {
        return Err(Error::forbidden(
            "only an owner can grant, change or remove the owner role",
        ));
    }
    if current == Role::Owner
        && new != Some(Role::Owner)
        && projects::lock_owners(s.conn(), pid).await? <= 1
    {
        return Err(Error::conflict(
            "last_owner",
            "a project needs an owner; make someone else owner first",
        ));
    }
    Ok(())
}

/// Changes a member's role (admins; owners for the owner role).
#[utoipa::path(patch, path = "/api/v1/projects/{pid}/members/{user_id}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id"), ("user_id" = Uuid, Path, description = "member's user id")),
    request_body = MemberPatch,
    responses(
        (status = 200, body = MemberOut),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ))]
async fn update_member(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path((pid, user_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<MemberPatch>,
) -> Result<Json<MemberOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let mine = s.require(pid, Role::Admin, "project").await?;
    let current = projects::member(s.conn(), pid, user_id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    let current_role = MemberOut::try_from(current)?.role;
    guard_owner_change(&mut s, pid, mine, current_role, Some(input.role)).await?;
    if !projects::set_member_role(s.conn(), pid, user_id, input.role.as_str()).await? {
        return Err(Error::not_found("member"));
    }
    s.audit(
        Some(pid),
        "member.role",
        Some(("user", user_id.to_string())),
        json!({ "from": current_role, "to": input.role }),
    )
    .await?;
    let m = projects::member(s.conn(), pid, user_id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    s.commit().await?;
    Ok(Json(m.try_into()?))
}

/// Removes a member (admins; owners to remove an owner). Anyone may leave.
#[utoipa::path(delete, path = "/api/v1/projects/{pid}/members/{user_id}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id"), ("user_id" = Uuid, Path, description = "member's user id")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ))]
async fn remove_member(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path((pid, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, Error> {
    let leaving = caller.user_id() == Some(user_id);
    let mut s = Session::begin(&ctx, caller, client).await?;
    let mine = s
        .require(
            pid,
            if leaving { Role::Viewer } else { Role::Admin },
            "project",
        )
        .await?;
    let current = projects::member(s.conn(), pid, user_id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    let current_role = MemberOut::try_from(current)?.role;
    // Leaving needs no admin rights (the members policy does, so elevate
    // after the checks); an owner leaving must not be the last one.
    guard_owner_change(
        &mut s,
        pid,
        if leaving { Role::Owner } else { mine },
        current_role,
        None,
    )
    .await?;
    if leaving {
        s.elevate().await?;
    }
    if !projects::remove_member(s.conn(), pid, user_id).await? {
        return Err(Error::not_found("member"));
    }
    s.audit(
        Some(pid),
        if leaving {
            "member.leave"
        } else {
            "member.remove"
        },
        Some(("user", user_id.to_string())),
        json!({ "role": current_role }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// API keys ---------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// 1 to 200 characters.
    pub name: String,
    /// `admin`, `editor` or `viewer`; at most the creator's own role.
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub role: Role,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key itself: shown this once, stored only as a hash.
    pub key: String,
    /// Its metadata (with `id`), as `GET .../api-keys` lists it.
    #[serde(flatten)]
    pub meta: ApiKeyOut,
}

impl TryFrom<api_keys::ApiKey> for ApiKeyOut {
    type Error = Error;

    fn try_from(k: api_keys::ApiKey) -> Result<Self, Error> {
        Ok(ApiKeyOut {
            role: Role::parse(&k.role)
                .ok_or_else(|| Error::internal(format!("api key role {:?}", k.role)))?,
            id: k.id,
            project_id: k.project_id,
            name: k.name,
            prefix: k.key_prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        })
    }
}

/// Creates an API key (admins). The key is in this response only.
#[utoipa::path(post, path = "/api/v1/projects/{pid}/api-keys", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = ApiKeyIn,
    responses(
        (status = 201, body = ApiKeyCreated),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn create_api_key(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<ApiKeyIn>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), Error> {
    let name = super::check_name("/name", &input.name)?;
    if input.role == Role::Owner {
        return Err(Error::invalid("/role", "an API key is at most admin"));
    }
    let created_by = caller.actor().0;
    let mut s = Session::begin(&ctx, caller, client).await?;
    let mine = s.require(pid, Role::Admin, "project").await?;
    if input.role > mine {
        return Err(Error::forbidden(
            "a key cannot have a higher role than its creator",
        ));
    }
    let key = auth::random_token(auth::API_KEY_PREFIX);
    let prefix: String = key.chars().take(10).collect();
    let hash = auth::token_hash(&key);
    let row = api_keys::create(
        s.conn(),
        &api_keys::NewKey {
            project_id: pid,
            name: &name,
            role: input.role.as_str(),
            key_prefix: &prefix,
            key_hash: &hash,
            created_by: Some(created_by),
        },
    )
    .await?;
    s.audit(
        Some(pid),
        "api_key.create",
        Some(("api_key", row.id.to_string())),
        json!({ "name": name, "role": input.role, "prefix": prefix }),
    )
    .await?;
    s.commit().await?;
    let meta = ApiKeyOut::try_from(row)?;
    Ok((StatusCode::CREATED, Json(ApiKeyCreated { key, meta })))
}

/// The project's API keys (admins), revoked ones included; never the keys.
#[utoipa::path(get, path = "/api/v1/projects/{pid}/api-keys", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = Vec<ApiKeyOut>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_api_keys(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<Vec<ApiKeyOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    let list = api_keys::list(s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(
        list.into_iter()
            .map(ApiKeyOut::try_from)
            .collect::<Result<_, _>>()?,
    ))
}

/// Revokes an API key (admins); it stops working at once.
#[utoipa::path(delete, path = "/api/v1/projects/{pid}/api-keys/{id}", tag = "projects",
    params(("pid" = Uuid, Path, description = "project id"), ("id" = Uuid, Path, description = "API key id")),
    responses((status = 204, description = "revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path((pid, id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Admin, "project").await?;
    let key = api_keys::revoke(s.conn(), pid, id)
        .await?
        .ok_or_else(|| Error::not_found("API key"))?;
    s.audit(
        Some(pid),
        "api_key.revoke",
        Some(("api_key", id.to_string())),
        json!({ "name": key.name }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

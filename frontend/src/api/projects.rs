//! Projects, their members and API keys.

use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, delete, get, post};

/// Roles a member or API key can have, strongest first.
pub const ROLES: [&str; 4] = ["owner", "admin", "editor", "viewer"];

/// `{id, name, role}` of a project the caller belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// Project id (uuid).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The caller's role in it.
    pub role: Option<String>,
}

/// A project member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's user id.
    pub user_id: String,
    /// Their email.
    pub email: String,
    /// `owner | admin | editor | viewer`.
    pub role: String,
    /// When they were added.
    pub created_at: String,
}

/// A project API key (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The key's role.
    pub role: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: String,
    /// When it was last used, if ever.
    pub last_used_at: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// The answer to creating a key: the key, shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyCreated {
    /// The secret key.
    pub key: String,
    /// Its metadata.
    pub meta: ApiKey,
}

/// `GET /api/v1/projects`.
pub async fn list() -> Result<Vec<Project>, Error> {
    get("/api/v1/projects").await
}

/// `POST /api/v1/projects`.
pub async fn create(name: &str) -> Result<Project, Error> {
    post("/api/v1/projects", &json!({ "name": name })).await
}

/// `GET /api/v1/projects/{pid}/members`.
pub async fn members(project: &str) -> Result<Vec<Member>, Error> {
    get(&format!("/api/v1/projects/{project}/members")).await
}

/// `POST /api/v1/projects/{pid}/members`.
pub async fn add_member(project: &str, email: &str, role: &str) -> Result<Member, Error> {
    post(
        &format!("/api/v1/projects/{project}/members"),
        &json!({ "email": email, "role": role }),
    )
    .await
}

/// `GET /api/v1/projects/{pid}/api-keys`.
pub async fn api_keys(project: &str) -> Result<Vec<ApiKey>, Error> {
    get(&format!("/api/v1/projects/{project}/api-keys")).await
}

/// `POST /api/v1/projects/{pid}/api-keys`.
pub async fn create_api_key(project: &str, name: &str, role: &str) -> Result<ApiKeyCreated, Error> {
    post(
        &format!("/api/v1/projects/{project}/api-keys"),
        &json!({ "name": name, "role": role }),
    )
    .await
}

/// `DELETE /api/v1/projects/{pid}/api-keys/{id}`.
pub async fn delete_api_key(project: &str, id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/projects/{project}/api-keys/{id}")).await
}

impl FromJson for Project {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Project {
            id: f.string("id")?,
            name: f.string("name")?,
            role: f.opt_string("role"),
        })
    }
}

impl FromJson for Member {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Member {
            user_id: f.string("user_id")?,
            email: f.string("email")?,
            role: f.string("role")?,
            created_at: f.string("created_at")?,
        })
    }
}

impl FromJson for ApiKey {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(ApiKey {
            id: f.string("id")?,
            name: f.string("name")?,
            role: f.string("role")?,
            prefix: f.string("prefix")?,
            created_at: f.string("created_at")?,
            last_used_at: f.opt_string("last_used_at"),
            revoked_at: f.opt_string("revoked_at"),
        })
    }
}

impl FromJson for ApiKeyCreated {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(ApiKeyCreated {
            key: Fields::of(value)?.string("key")?,
            meta: ApiKey::from_json(value)?,
        })
    }
}

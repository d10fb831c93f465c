//! Workflows and published versions, as the service role sees them (no
//! RLS): used by the engine's tools (benchmarks, CLI) and tests. The API's
//! tenant-scoped versions run the same statements under the caller's role.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;

/// SHA-256 (hex) of a definition's canonical JSON (serde_json orders object
/// keys), so an unchanged draft publishes to the same version.
pub fn content_hash(definition: &Value) -> String {
    let canonical = serde_json::to_string(definition).unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a project (no members: the service role's own).
pub async fn create_project(conn: &mut PgConnection, name: &str) -> Result<Uuid> {
    Ok(
        sqlx::query_scalar("INSERT INTO meshhook.projects (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(conn)
            .await?,
    )
}

/// Creates a workflow draft.
pub async fn create(
    conn: &mut PgConnection,
    project_id: Uuid,
    name: &str,
    definition: &Value,
) -> Result<Uuid> {
    Ok(sqlx::query_scalar(
        "INSERT INTO meshhook.workflows (project_id, name, definition) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(project_id)
    .bind(name)
    .bind(definition)
    .fetch_one(conn)
    .await?)
}

/// Publishes the workflow's current draft as the next version, or returns
/// the existing version with the same content. Returns `(version id, number)`.
pub async fn publish(
    conn: &mut PgConnection,
    workflow_id: Uuid,
    published_by: Option<Uuid>,
) -> Result<(Uuid, i32)> {
    let p = publish_draft(conn, workflow_id, published_by).await?;
    Ok((p.id, p.version))
}

/// Locks the workflow's row for the rest of the transaction (as
/// [`publish_draft`] does), so the draft read next is the one published:
/// a concurrent save waits. False if the row is not there (or not
/// writable in the caller's session).
pub async fn lock(conn: &mut PgConnection, workflow_id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM meshhook.workflows WHERE id = $1 FOR UPDATE")
            .bind(workflow_id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// What [`publish_draft`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub id: Uuid,
    pub version: i32,
    /// A new version was made (false: the draft equals an existing one).
    pub created: bool,
}

/// [`publish`], telling whether this call made the version. Decided under
/// the workflow's row lock, so of two concurrent publishes of one draft
/// exactly one reports `created`.
pub async fn publish_draft(
    conn: &mut PgConnection,
    workflow_id: Uuid,
    published_by: Option<Uuid>,
) -> Result<Published> {
    // Serialise publishers of one workflow on its row.
    let (project_id, definition): (Uuid, Value) = sqlx::query_as(
        "SELECT project_id, definition FROM meshhook.workflows WHERE id = $1 FOR UPDATE",
    )
    .bind(workflow_id)
    .fetch_one(&mut *conn)
    .await?;
    let hash = content_hash(&definition);
    if let Some(existing) = sqlx::query_as::<_, (Uuid, i32)>(
        "SELECT id, version FROM meshhook.workflow_versions WHERE workflow_id = $1 AND content_hash = $2",
    )
    .bind(workflow_id)
    .bind(&hash)
    .fetch_optional(&mut *conn)
    .await?
    {
        return Ok(Published {
            id: existing.0,
            version: existing.1,
            created: false,
        });
    }
    let (id, version): (Uuid, i32) = sqlx::query_as(
        "INSERT INTO meshhook.workflow_versions (workflow_id, project_id, version, definition, content_hash, published_by)
         SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5 FROM meshhook.workflow_versions WHERE workflow_id = $1
         RETURNING id, version",
    )
    .bind(workflow_id)
    .bind(project_id)
    .bind(&definition)
    .bind(&hash)
    .bind(published_by)
    .fetch_one(conn)
    .await?;
    Ok(Published {
        id,
        version,
        created: true,
    })
}

// Tenant-scoped queries: the API runs these inside the caller's RLS
// session (see [`crate::session`]), so the policies decide visibility.

/// A workflow's draft, with what it takes to tell whether it is published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Workflow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub definition: Value,
    pub created_by: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The newest published version's number.
    pub latest_version: Option<i32>,
    /// The newest published version's content hash.
    pub latest_hash: Option<String>,
}

impl Workflow {
    /// `published` when the draft is exactly the newest version, else `draft`.
    pub fn status(&self) -> &'static str {
        match &self.latest_hash {
            Some(h) if *h == content_hash(&self.definition) => "published",
            _ => "draft",
        }
    }
}

const WORKFLOW_COLUMNS: &str =
    "w.id, w.project_id, w.name, w.definition, w.created_by, w.created_at, w.updated_at,
    v.version AS latest_version, v.content_hash AS latest_hash";
const LATEST_VERSION_JOIN: &str = "LEFT JOIN LATERAL (
        SELECT version, content_hash FROM meshhook.workflow_versions
        WHERE workflow_id = w.id ORDER BY version DESC LIMIT 1) v ON true";

/// Creates a draft and returns it.
pub async fn insert(
    conn: &mut PgConnection,
    project_id: Uuid,
    name: &str,
    definition: &Value,
    created_by: Option<Uuid>,
) -> Result<Workflow> {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO meshhook.workflows (project_id, name, definition, created_by) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(project_id)
    .bind(name)
    .bind(definition)
    .bind(created_by)
    .fetch_one(&mut *conn)
    .await?;
    get(conn, id)
        .await?
        .ok_or_else(|| crate::Error::Corrupt("a workflow vanished right after its insert".into()))
}

/// The project's workflows, most recently edited first.
pub async fn list(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<Workflow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM meshhook.workflows w {LATEST_VERSION_JOIN}
         WHERE w.project_id = $1 ORDER BY w.updated_at DESC, w.id DESC"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// One workflow.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Workflow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM meshhook.workflows w {LATEST_VERSION_JOIN} WHERE w.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The project a workflow belongs to.
pub async fn project_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT project_id FROM meshhook.workflows WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Updates the draft's name and/or definition. `false` when no row was
/// visible to update.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<&str>,
    definition: Option<&Value>,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE meshhook.workflows SET name = coalesce($2, name), definition = coalesce($3, definition), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(definition)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes a workflow with its versions and runs. `false` when no row was
/// visible to delete.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM meshhook.workflows WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// A published version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Version {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub project_id: Uuid,
    pub version: i32,
    pub definition: Value,
    pub content_hash: String,
    pub published_by: Option<Uuid>,
    pub published_at: chrono::DateTime<chrono::Utc>,
}

const VERSION_COLUMNS: &str =
    "id, workflow_id, project_id, version, definition, content_hash, published_by, published_at";

/// The workflow's versions, newest first.
pub async fn versions(conn: &mut PgConnection, workflow_id: Uuid) -> Result<Vec<Version>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM meshhook.workflow_versions WHERE workflow_id = $1 ORDER BY version DESC"
    )))
    .bind(workflow_id)
    .fetch_all(conn)
    .await?)
}

/// Version `number` of the workflow.
pub async fn version(
    conn: &mut PgConnection,
    workflow_id: Uuid,
    number: i32,
) -> Result<Option<Version>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM meshhook.workflow_versions WHERE workflow_id = $1 AND version = $2"
    )))
    .bind(workflow_id)
    .bind(number)
    .fetch_optional(conn)
    .await?)
}

/// The version with id `id`.
pub async fn version_by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<Version>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM meshhook.workflow_versions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

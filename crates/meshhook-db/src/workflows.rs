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
        return Ok(existing);
    }
    Ok(sqlx::query_as(
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
    .await?)
}

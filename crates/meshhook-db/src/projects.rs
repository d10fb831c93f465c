//! Projects and their members, as a caller sees them: every function here
//! runs inside the caller's RLS session (see [`crate::session`]), so the
//! policies of migration 0005 filter every statement.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::Result;

/// A project with the caller's role in it.
#[derive(Debug, Clone, FromRow)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// How long finished runs, their events and delivery-log rows are kept
    /// (migration 0014; [`crate::retention`]).
    pub retention_days: i32,
    /// The caller's role (`owner|admin|editor|viewer`).
    pub role: Option<String>,
}

/// The caller's role column: their membership, or an API key's own role.
const ROLE: &str = "coalesce(
        (SELECT m.role FROM meshhook.project_members m WHERE m.project_id = p.id AND m.user_id = auth.uid()),
        CASE WHEN nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'mh_project' = p.id::text
             THEN nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'mh_role' END)";

/// Creates a project owned by the caller (`meshhook.create_project`, which
/// refuses API keys with `insufficient_privilege`).
pub async fn create(conn: &mut PgConnection, name: &str) -> Result<Project> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.name, p.created_at, p.retention_days, 'owner'::text AS role FROM meshhook.create_project($1) p",
    )
    .bind(name)
    .fetch_one(conn)
    .await?)
}

/// The projects the caller can see, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Project>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.id, p.name, p.created_at, p.retention_days, {ROLE} AS role FROM meshhook.projects p ORDER BY p.created_at, p.id"
    )))
    .fetch_all(conn)
    .await?)
}

/// One project, if the caller can see it.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Project>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.id, p.name, p.created_at, p.retention_days, {ROLE} AS role FROM meshhook.projects p WHERE p.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Renames a project. `false` when no row was visible to update.
pub async fn rename(conn: &mut PgConnection, id: Uuid, name: &str) -> Result<bool> {
    Ok(
        sqlx::query("UPDATE meshhook.projects SET name = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(name)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Sets how many days the project keeps finished runs, events and
/// delivery-log rows (1..=3650, checked by the table). `false` when no row
/// was visible to update (RLS: admins and owners).
pub async fn set_retention(conn: &mut PgConnection, id: Uuid, days: i32) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE meshhook.projects SET retention_days = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(days)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes a project and, by cascade, everything in it. `false` when no
/// row was visible to delete.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM meshhook.projects WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// The project's stored redaction rules: `None` when the caller cannot
/// see the project, `Some(None)` when it keeps the defaults (migration
/// 0012).
pub async fn redaction(conn: &mut PgConnection, id: Uuid) -> Result<Option<Option<Value>>> {
    Ok(
        sqlx::query_scalar("SELECT redaction FROM meshhook.projects WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Replaces the project's redaction rules (`None`: back to the defaults).
/// `false` when no row was visible to update (RLS: admins and owners).
pub async fn set_redaction(
    conn: &mut PgConnection,
    id: Uuid,
    rules: Option<&Value>,
) -> Result<bool> {
    Ok(
        sqlx::query(
            "UPDATE meshhook.projects SET redaction = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(rules)
        .execute(conn)
        .await?
        .rows_affected()
            == 1,
    )
}

/// The role of user `user_id` in the project, if they are a member.
pub async fn member_role(
    conn: &mut PgConnection,
    project_id: Uuid,
    user_id: Uuid,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT role FROM meshhook.project_members WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// A member of a project.
#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// The project's members, oldest first.
pub async fn members(conn: &mut PgConnection, project_id: Uuid) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, m.created_at
         FROM meshhook.project_members m JOIN meshhook.users u ON u.id = m.user_id
         WHERE m.project_id = $1 ORDER BY m.created_at, m.user_id",
    )
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// One member.
pub async fn member(
    conn: &mut PgConnection,
    project_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Member>> {
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, m.created_at
         FROM meshhook.project_members m JOIN meshhook.users u ON u.id = m.user_id
         WHERE m.project_id = $1 AND m.user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Adds a member. An existing membership fails with the unique violation
/// `project_members_pkey`.
pub async fn add_member(
    conn: &mut PgConnection,
    project_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO meshhook.project_members (project_id, user_id, role) VALUES ($1, $2, $3)",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role)
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes a member's role. `false` when there is no such member.
pub async fn set_member_role(
    conn: &mut PgConnection,
    project_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE meshhook.project_members SET role = $3 WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Removes a member. `false` when there is no such member.
pub async fn remove_member(
    conn: &mut PgConnection,
    project_id: Uuid,
    user_id: Uuid,
) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM meshhook.project_members WHERE project_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Locks the project's owner rows and counts them, so two concurrent
/// demotions cannot both leave the project without an owner.
pub async fn lock_owners(conn: &mut PgConnection, project_id: Uuid) -> Result<i64> {
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM meshhook.project_members WHERE project_id = $1 AND role = 'owner' FOR UPDATE",
    )
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(i64::try_from(owners.len()).unwrap_or(i64::MAX))
}

//! Workflows (mutable drafts), validation, publishing immutable versions,
//! restoring a version into the draft, and test runs of the draft.
//!
//! Viewers read and validate; editors create, edit, delete, publish,
//! restore and test-run. Publishing an invalid draft is 422 with every
//! problem and its JSON pointer; publishing an unchanged draft returns the
//! existing version (same id and number, `created: false`) instead of a
//! duplicate.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Context;
use crate::access::{Role, Session};
use crate::auth::Caller;
use crate::error::{Error, ErrorBody, FieldError};
use crate::extract::{ClientInfo, Json, Path};
use meshhook_db::workflows;

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(create_workflow, list_workflows))
        .routes(routes!(get_workflow, update_workflow, delete_workflow))
        .routes(routes!(validate_workflow))
        .routes(routes!(publish))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(restore_version))
        .routes(routes!(test_run))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowIn {
    /// 1 to 200 characters.
    pub name: String,
    /// The draft definition (`{nodes, edges}`); drafts may be invalid, but
    /// must be a JSON object. Defaults to an empty workflow.
    #[schema(value_type = Object)]
    pub definition: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPatch {
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub definition: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowOut {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub definition: Value,
    /// `draft`, or `published` when the draft equals the newest version.
    pub status: &'static str,
    /// The newest published version, if any.
    pub latest_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<workflows::Workflow> for WorkflowOut {
    fn from(w: workflows::Workflow) -> Self {
        WorkflowOut {
            status: w.status(),
            id: w.id,
            project_id: w.project_id,
            name: w.name,
            definition: w.definition,
            latest_version: w.latest_version,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOut {
    pub valid: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionOut {
    /// The version's id.
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// 1, 2, ...
    pub version: i32,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    pub published_by: Option<Uuid>,
    /// Only in `GET .../versions/{n}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// Only in the publish answer: `false` when the draft was unchanged and
    /// the existing version is returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

impl VersionOut {
    fn new(v: workflows::Version, with_definition: bool) -> Self {
        VersionOut {
            id: v.id,
            workflow_id: v.workflow_id,
            version: v.version,
            created_at: v.published_at,
            published_by: v.published_by,
            definition: with_definition.then_some(v.definition),
            created: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRunIn {
    /// The sample trigger body.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Sample request headers (`{name: value}`).
    #[serde(default)]
    pub headers: Option<Map<String, Value>>,
    /// Sample query parameters (`{name: value}`).
    #[serde(default)]
    pub query: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunCreated {
    pub run_id: Uuid,
}

fn check_definition(definition: &Value) -> Result<(), Error> {
    if definition.is_object() {
        Ok(())
    } else {
        Err(Error::invalid(
            "/definition",
            "must be a JSON object ({nodes, edges})",
        ))
    }
}

fn issues(issues: Vec<meshhook_core::validate::Issue>) -> Vec<FieldError> {
    issues
        .into_iter()
        .map(|i| FieldError {
            path: i.path,
            message: i.message,
        })
        .collect()
}

fn invalid_definition(errors: Vec<FieldError>) -> Error {
    Error::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_definition",
        format!(
            "the definition has {} problem(s); see `errors`",
            errors.len()
        ),
    )
    .with_errors(errors)
}

/// Loads a workflow the caller may act on with `min`, or 404/403.
async fn load(s: &mut Session, id: Uuid, min: Role) -> Result<workflows::Workflow, Error> {
    authorize(s, id, min).await?;
    read(s, id).await
}

/// 404 unless the workflow is visible, 403 unless the caller has `min`.
async fn authorize(s: &mut Session, id: Uuid, min: Role) -> Result<(), Error> {
    let project = workflows::project_of(s.conn(), id).await?;
    s.require_on(project, min, "workflow").await?;
    Ok(())
}

async fn read(s: &mut Session, id: Uuid) -> Result<workflows::Workflow, Error> {
    workflows::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("workflow"))
}

/// Creates a draft workflow (editors).
#[utoipa::path(post, path = "/api/v1/projects/{pid}/workflows", tag = "workflows",
    params(("pid" = Uuid, Path, description = "project id")),
    request_body = WorkflowIn,
    responses((status = 201, body = WorkflowOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_workflow(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
    Json(input): Json<WorkflowIn>,
) -> Result<(StatusCode, Json<WorkflowOut>), Error> {
    let name = super::check_name("/name", &input.name)?;
    let definition = input
        .definition
        .unwrap_or_else(|| json!({ "nodes": [], "edges": [] }));
    check_definition(&definition)?;
    let user = caller.user_id();
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Editor, "project").await?;
    let w = workflows::insert(s.conn(), pid, &name, &definition, user).await?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(w.into())))
}

/// The project's workflows (members).
#[utoipa::path(get, path = "/api/v1/projects/{pid}/workflows", tag = "workflows",
    params(("pid" = Uuid, Path, description = "project id")),
    responses((status = 200, body = Vec<WorkflowOut>), (status = 404, body = ErrorBody)))]
async fn list_workflows(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(pid): Path<Uuid>,
) -> Result<Json<Vec<WorkflowOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    s.require(pid, Role::Viewer, "project").await?;
    let list = workflows::list(s.conn(), pid).await?;
    s.commit().await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// One workflow with its draft (members).
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    responses((status = 200, body = WorkflowOut), (status = 404, body = ErrorBody)))]
async fn get_workflow(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<WorkflowOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let w = load(&mut s, id, Role::Viewer).await?;
    s.commit().await?;
    Ok(Json(w.into()))
}

/// Replaces the draft's name and/or definition (editors).
#[utoipa::path(put, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    request_body = WorkflowPatch,
    responses((status = 200, body = WorkflowOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_workflow(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Json(input): Json<WorkflowPatch>,
) -> Result<Json<WorkflowOut>, Error> {
    let name = input
        .name
        .as_deref()
        .map(|n| super::check_name("/name", n))
        .transpose()?;
    if let Some(d) = &input.definition {
        check_definition(d)?;
    }
    if name.is_none() && input.definition.is_none() {
        return Err(Error::invalid("", "send `name`, `definition` or both"));
    }
    let mut s = Session::begin(&ctx, caller, client).await?;
    load(&mut s, id, Role::Editor).await?;
    if !workflows::update(s.conn(), id, name.as_deref(), input.definition.as_ref()).await? {
        return Err(Error::not_found("workflow"));
    }
    let w = workflows::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("workflow"))?;
    s.commit().await?;
    Ok(Json(w.into()))
}

/// Deletes a workflow with its versions and runs (editors).
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_workflow(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let w = load(&mut s, id, Role::Editor).await?;
    if !workflows::delete(s.conn(), id).await? {
        return Err(Error::not_found("workflow"));
    }
    s.audit(
        Some(w.project_id),
        "workflow.delete",
        Some(("workflow", id.to_string())),
        json!({ "name": w.name }),
    )
    .await?;
    s.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/workflows/{id}/validate`: optional; without it the
/// saved draft is checked.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ValidateIn {
    /// A definition to check instead of the saved draft (the editor checks
    /// unsaved changes this way).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
}

/// Validates the draft, or the definition in the body: every problem with a
/// JSON pointer (members).
#[utoipa::path(post, path = "/api/v1/workflows/{id}/validate", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    request_body(content = Option<ValidateIn>, description = "optional: `{definition}` to check instead of the saved draft"),
    responses((status = 200, body = ValidationOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn validate_workflow(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<ValidationOut>, Error> {
    let given = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let input: ValidateIn = crate::extract::parse(&body)?;
        if let Some(d) = &input.definition {
            check_definition(d)?;
        }
        input.definition
    };
    let mut s = Session::begin(&ctx, caller, client).await?;
    let w = load(&mut s, id, Role::Viewer).await?;
    s.commit().await?;
    let definition = given.as_ref().unwrap_or(&w.definition);
    let errors = match meshhook_core::validate::validate(definition) {
        Ok(_) => Vec::new(),
        Err(found) => issues(found),
    };
    Ok(Json(ValidationOut {
        valid: errors.is_empty(),
        errors,
    }))
}

/// Publishes the draft as an immutable version (editors). 422 with every
/// problem when invalid; an unchanged draft returns its existing version.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/publish", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    responses(
        (status = 201, description = "published (or the existing identical version, `created: false`)", body = VersionOut),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_definition` with `errors`", body = ErrorBody),
    ))]
async fn publish(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<VersionOut>), Error> {
    let user = caller.user_id();
    let mut s = Session::begin(&ctx, caller, client).await?;
    authorize(&mut s, id, Role::Editor).await?;
    // Validate the draft that will be published: under the row lock a
    // concurrent save waits until this publish commits.
    if !workflows::lock(s.conn(), id).await? {
        return Err(Error::not_found("workflow"));
    }
    let w = read(&mut s, id).await?;
    if let Err(found) = meshhook_core::validate::validate(&w.definition) {
        return Err(invalid_definition(issues(found)));
    }
    let workflows::Published {
        id: version_id,
        version: number,
        created,
    } = workflows::publish_draft(s.conn(), id, user).await?;
    let version = workflows::version_by_id(s.conn(), version_id)
        .await?
        .ok_or_else(|| Error::internal("a published version vanished"))?;
    if created {
        s.audit(
            Some(w.project_id),
            "workflow.publish",
            Some(("workflow", id.to_string())),
            json!({ "version": number, "version_id": version_id }),
        )
        .await?;
    }
    s.commit().await?;
    let mut out = VersionOut::new(version, false);
    out.created = Some(created);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The workflow's published versions, newest first (members).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/versions", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    responses((status = 200, body = Vec<VersionOut>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<VersionOut>>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    load(&mut s, id, Role::Viewer).await?;
    let list = workflows::versions(s.conn(), id).await?;
    s.commit().await?;
    Ok(Json(
        list.into_iter()
            .map(|v| VersionOut::new(v, false))
            .collect(),
    ))
}

/// Version `n` with its definition (members).
#[utoipa::path(get, path = "/api/v1/workflows/{id}/versions/{n}", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id"), ("n" = i32, Path, description = "version number")),
    responses((status = 200, body = VersionOut), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path((id, n)): Path<(Uuid, i32)>,
) -> Result<Json<VersionOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    load(&mut s, id, Role::Viewer).await?;
    let v = workflows::version(s.conn(), id, n)
        .await?
        .ok_or_else(|| Error::not_found("version"))?;
    s.commit().await?;
    Ok(Json(VersionOut::new(v, true)))
}

/// Rollback: replaces the draft with version `n`'s definition (editors).
/// Publish afterwards to make it the newest version.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/versions/{n}/restore", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id"), ("n" = i32, Path, description = "version number")),
    responses((status = 200, body = WorkflowOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn restore_version(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path((id, n)): Path<(Uuid, i32)>,
) -> Result<Json<WorkflowOut>, Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let w = load(&mut s, id, Role::Editor).await?;
    let v = workflows::version(s.conn(), id, n)
        .await?
        .ok_or_else(|| Error::not_found("version"))?;
    workflows::update(s.conn(), id, None, Some(&v.definition)).await?;
    s.audit(
        Some(w.project_id),
        "workflow.restore",
        Some(("workflow", id.to_string())),
        json!({ "version": n }),
    )
    .await?;
    let w = workflows::get(s.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("workflow"))?;
    s.commit().await?;
    Ok(Json(w.into()))
}

/// Runs the current draft with a sample trigger (editors). The run
/// carries its own copy of the draft.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/test-runs", tag = "workflows",
    params(("id" = Uuid, Path, description = "workflow id")),
    request_body = TestRunIn,
    responses(
        (status = 201, body = RunCreated),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_definition` with `errors`", body = ErrorBody),
    ))]
async fn test_run(
    State(ctx): State<Context>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<Uuid>,
    Json(input): Json<TestRunIn>,
) -> Result<(StatusCode, Json<RunCreated>), Error> {
    let mut s = Session::begin(&ctx, caller, client).await?;
    let w = load(&mut s, id, Role::Editor).await?;
    if let Err(found) = meshhook_core::validate::validate(&w.definition) {
        return Err(invalid_definition(issues(found)));
    }
    let trigger = meshhook_orchestrator::engine::trigger(
        input.payload,
        Value::Object(input.headers.unwrap_or_default()),
        Value::Object(input.query.unwrap_or_default()),
    );
    // Authorised above; the engine also enqueues the orchestrator's
    // wake-up, which `authenticated` may not write.
    s.elevate().await?;
    let run_id = meshhook_orchestrator::engine::test_run(s.conn(), id, trigger, Utc::now()).await?;
    s.commit().await?;
    Ok((StatusCode::CREATED, Json(RunCreated { run_id })))
}

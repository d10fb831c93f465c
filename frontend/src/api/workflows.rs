//! Workflows (drafts and their publication status).

use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, delete, get, post, put};

/// A workflow with its draft definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// Workflow id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The draft definition (`{nodes, edges}`).
    pub definition: Value,
    /// `draft`, or `published` when the draft equals the newest version.
    pub status: String,
    /// The newest published version, if any.
    pub latest_version: Option<i32>,
    /// Last change of the draft.
    pub updated_at: String,
}

impl Workflow {
    /// `published v3`, `draft (v2 published)` or `draft`.
    pub fn status_label(&self) -> String {
        match (self.status.as_str(), self.latest_version) {
            ("published", Some(version)) => format!("published v{version}"),
            (_, Some(version)) => format!("draft · v{version} live"),
            _ => "draft".to_owned(),
        }
    }

    /// Whether the draft is what runs (no unpublished changes).
    pub fn is_published(&self) -> bool {
        self.status == "published"
    }
}

/// `GET /api/v1/projects/{pid}/workflows`.
pub async fn list(project: &str) -> Result<Vec<Workflow>, Error> {
    get(&format!("/api/v1/projects/{project}/workflows")).await
}

/// `POST /api/v1/projects/{pid}/workflows` with an empty definition.
pub async fn create(project: &str, name: &str) -> Result<Workflow, Error> {
    post(
        &format!("/api/v1/projects/{project}/workflows"),
        &json!({ "name": name, "definition": { "nodes": [], "edges": [] } }),
    )
    .await
}

/// `GET /api/v1/workflows/{id}`.
pub async fn fetch(id: &str) -> Result<Workflow, Error> {
    get(&format!("/api/v1/workflows/{id}")).await
}

/// `PUT /api/v1/workflows/{id}` with a new name.
pub async fn rename(id: &str, name: &str) -> Result<Workflow, Error> {
    put(&format!("/api/v1/workflows/{id}"), &json!({ "name": name })).await
}

/// `DELETE /api/v1/workflows/{id}`.
pub async fn remove(id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/workflows/{id}")).await
}

/// One node type of the palette (`GET /api/v1/node-types`).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeType {
    pub kind: String,
    pub title: String,
    pub description: String,
    pub config_schema: Value,
    /// `["default"]`, or `["true", "false"]` for branch.
    pub outputs: Vec<String>,
    pub icon: String,
}

/// `GET /api/v1/node-types`.
pub async fn node_types() -> Result<Vec<NodeType>, Error> {
    get("/api/v1/node-types").await
}

/// `PUT /api/v1/workflows/{id}` with a new draft definition.
pub async fn save(id: &str, definition: &Value) -> Result<Workflow, Error> {
    put(
        &format!("/api/v1/workflows/{id}"),
        &json!({ "definition": definition }),
    )
    .await
}

/// One problem found by validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    /// JSON pointer into the definition (`/nodes/2/config/url`).
    pub path: String,
    pub message: String,
}

/// The answer of `POST /api/v1/workflows/{id}/validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    pub valid: bool,
    pub errors: Vec<Issue>,
}

/// `POST /api/v1/workflows/{id}/validate` with an unsaved definition.
pub async fn validate(id: &str, definition: &Value) -> Result<Validation, Error> {
    post(
        &format!("/api/v1/workflows/{id}/validate"),
        &json!({ "definition": definition }),
    )
    .await
}

/// A published version.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub version: i32,
    pub created_at: String,
    pub definition: Option<Value>,
}

/// `POST /api/v1/workflows/{id}/publish`.
pub async fn publish(id: &str) -> Result<Version, Error> {
    post(&format!("/api/v1/workflows/{id}/publish"), &json!({})).await
}

/// `GET /api/v1/workflows/{id}/versions`, newest first.
pub async fn versions(id: &str) -> Result<Vec<Version>, Error> {
    let mut list: Vec<Version> = get(&format!("/api/v1/workflows/{id}/versions")).await?;
    crate::sort::by_key(&mut list, |v| std::cmp::Reverse(v.version));
    Ok(list)
}

/// `GET /api/v1/workflows/{id}/versions/{n}` with its definition.
pub async fn version(id: &str, n: i32) -> Result<Version, Error> {
    get(&format!("/api/v1/workflows/{id}/versions/{n}")).await
}

/// `POST /api/v1/workflows/{id}/versions/{n}/restore`: the version becomes
/// the draft.
pub async fn restore(id: &str, n: i32) -> Result<Workflow, Error> {
    post(
        &format!("/api/v1/workflows/{id}/versions/{n}/restore"),
        &json!({}),
    )
    .await
}

/// Started test run.
#[derive(Clone, Debug, PartialEq)]
struct TestRun {
    run_id: String,
}

/// `POST /api/v1/workflows/{id}/test-runs`: runs the saved draft with
/// `payload` as the trigger body; answers the run id.
pub async fn test_run(id: &str, payload: &Value) -> Result<String, Error> {
    let started: TestRun = post(
        &format!("/api/v1/workflows/{id}/test-runs"),
        &json!({ "payload": payload }),
    )
    .await?;
    Ok(started.run_id)
}

impl FromJson for Workflow {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Workflow {
            id: f.string("id")?,
            name: f.string("name")?,
            definition: f.value("definition"),
            status: f.string("status")?,
            latest_version: f.opt_i32("latest_version"),
            updated_at: f.string("updated_at")?,
        })
    }
}

impl FromJson for NodeType {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(NodeType {
            kind: f.string("type")?,
            title: f.string("title")?,
            description: f.string("description")?,
            config_schema: f.value("config_schema"),
            outputs: f.decode("outputs")?,
            icon: f.opt_string("icon").unwrap_or_default(),
        })
    }
}

impl FromJson for Issue {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Issue {
            path: f.string("path")?,
            message: f.string("message")?,
        })
    }
}

impl FromJson for Validation {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Validation {
            valid: f.boolean("valid")?,
            errors: f.decode("errors")?,
        })
    }
}

impl FromJson for Version {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Version {
            version: f.int_in("version")?,
            created_at: f.string("created_at")?,
            definition: f.opt_value("definition"),
        })
    }
}

impl FromJson for TestRun {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(TestRun {
            run_id: Fields::of(value)?.string("run_id")?,
        })
    }
}

//! Workflows (drafts and their publication status).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, delete, get, post, put};

/// A workflow with its draft definition.
#[derive(Clone, Debug, PartialEq, Deserialize)]
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
    #[serde(default)]
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

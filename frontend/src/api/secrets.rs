//! Project secrets. Values go to the server and never come back: every
//! answer carries a masked hint only.

use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, delete, get, post, put};

/// A secret's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// Secret id.
    pub id: String,
    /// `NAME` as used in `{{ secrets.NAME }}`.
    pub name: String,
    /// A hint such as `sk_…f3a9` (never the value).
    pub masked: String,
    /// Last change of the value.
    pub updated_at: String,
}

/// Whether `name` is a valid secret name: a letter or `_`, then letters,
/// digits or `_` (the core crate's `is_secret_name`), at most 128 bytes.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `GET /api/v1/projects/{pid}/secrets`.
pub async fn list(project: &str) -> Result<Vec<Secret>, Error> {
    get(&format!("/api/v1/projects/{project}/secrets")).await
}

/// `POST /api/v1/projects/{pid}/secrets`.
pub async fn create(project: &str, name: &str, value: &str) -> Result<Secret, Error> {
    post(
        &format!("/api/v1/projects/{project}/secrets"),
        &json!({ "name": name, "value": value }),
    )
    .await
}

/// `PUT /api/v1/secrets/{id}`: replaces the value.
pub async fn update(id: &str, value: &str) -> Result<Secret, Error> {
    put(&format!("/api/v1/secrets/{id}"), &json!({ "value": value })).await
}

/// `DELETE /api/v1/secrets/{id}`.
pub async fn remove(id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/secrets/{id}")).await
}

impl FromJson for Secret {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Secret {
            id: f.string("id")?,
            name: f.string("name")?,
            masked: f.string("masked")?,
            updated_at: f.string("updated_at")?,
        })
    }
}

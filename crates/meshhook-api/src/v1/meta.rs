//! Tenant-independent helpers for the editor: the node-type catalogue with
//! each type's config JSON Schema, and the JMESPath mapping preview. Both
//! need a valid bearer (any caller) but touch no tenant data.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Context;
use crate::auth::Caller;
use crate::error::{Error, ErrorBody};
use crate::extract::Json;

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(node_types))
        .routes(routes!(preview_transform))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeTypeOut {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// JSON Schema (draft 2020-12) of the node's `config`.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// Output ports: `["true", "false"]` for branch, `["default"]` otherwise.
    pub outputs: Vec<&'static str>,
    pub icon: &'static str,
}

/// Every node type with its config JSON Schema.
#[utoipa::path(get, path = "/api/v1/node-types", tag = "workflows",
    responses((status = 200, body = Vec<NodeTypeOut>), (status = 401, body = ErrorBody)))]
async fn node_types(_caller: Caller) -> Json<Vec<NodeTypeOut>> {
    Json(
        meshhook_core::node_types::all()
            .into_iter()
            .map(|t| NodeTypeOut {
                kind: t.r#type,
                title: t.title,
                description: t.description,
                config_schema: t.config_schema,
                outputs: t.outputs,
                icon: t.icon,
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// JMESPath (at most 10 000 characters).
    pub expression: String,
    /// The data to evaluate it against, e.g. a sample run context.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    #[schema(value_type = Object)]
    pub result: Value,
}

/// Evaluates a JMESPath expression against sample data. A bad expression
/// is 422 `invalid_expression` with its position.
#[utoipa::path(post, path = "/api/v1/preview/transform", tag = "workflows",
    request_body = PreviewIn,
    responses(
        (status = 200, body = PreviewOut),
        (status = 422, description = "`invalid_expression`: `detail` says where (`at position N: ...`), `errors[0].path` is `/expression`", body = ErrorBody),
    ))]
async fn preview_transform(
    _caller: Caller,
    Json(input): Json<PreviewIn>,
) -> Result<Json<PreviewOut>, Error> {
    if input.expression.chars().count() > 10_000 {
        return Err(Error::invalid(
            "/expression",
            "must be at most 10000 characters",
        ));
    }
    let expression = input.expression;
    let data = input.data;
    // Evaluation is CPU work on untrusted input: off the async workers.
    let result = tokio::task::spawn_blocking(move || meshhook_core::expr::eval(&expression, &data))
        .await
        .map_err(Error::internal)?;
    match result {
        Ok(result) => Ok(Json(PreviewOut { result })),
        Err(e) => {
            let message = e.to_string();
            Err(Error::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_expression",
                message.clone(),
            )
            .with_errors(vec![crate::error::FieldError {
                path: "/expression".into(),
                message,
            }]))
        }
    }
}

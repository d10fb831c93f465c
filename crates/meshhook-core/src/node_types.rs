//! The catalogue of node types, each with the JSON Schema of its config.
//!
//! One schema serves both sides: the validator checks configs against it and
//! the SPA generates config forms from it (`GET /api/v1/node-types`). Every
//! property has a `title` and a `description`; string properties carry a
//! `format` the form can use: `jmespath` (an expression over the run
//! context), `template` (text with `{{ expr }}`), and `duration-ms` on
//! millisecond integers.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

/// One node type as served by `GET /api/v1/node-types`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeType {
    /// The `type` value in a definition (`"http_call"`, ...).
    #[serde(rename = "type")]
    pub r#type: &'static str,
    /// Short human name.
    pub title: &'static str,
    /// One-sentence explanation.
    pub description: &'static str,
    /// JSON Schema (draft 2020-12) of the node's `config`.
    pub config_schema: Value,
    /// Output ports: `["true", "false"]` for branch, `["default"]` otherwise
    /// (the `default` port is an edge without a label).
    pub outputs: Vec<&'static str>,
    /// A suggested icon name for the palette.
    pub icon: &'static str,
}

/// The type names, in palette order.
pub const TYPE_NAMES: [&str; 5] = ["transform", "http_call", "branch", "delay", "terminate"];

/// The JSON Schema dialect every config schema declares.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

fn expression_property(title: &str, description: &str) -> Value {
    json!({
        "type": "string",
        "format": "jmespath",
        "minLength": 1,
        "title": title,
        "description": description,
    })
}

fn transform_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "title": "Transform",
        "type": "object",
        "additionalProperties": false,
        "required": ["expression"],
        "properties": {
            "expression": expression_property(
                "Expression",
                "JMESPath over the run context ({trigger, steps, run}); its value is the step's output."
            )
        }
    })
}

fn template_map(title: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "title": title,
        "description": description,
        "additionalProperties": {
            "type": "string",
            "format": "template",
            "title": "Value",
            "description": "Text; {{ expr }} is replaced by the expression's value."
        },
        "default": {}
    })
}

fn http_call_schema() -> Value {
    let methods: Vec<&str> = crate::definition::HttpMethod::ALL
        .iter()
        .map(|m| m.as_str())
        .collect();
    json!({
        "$schema": DIALECT,
        "title": "HTTP call",
        "type": "object",
        "additionalProperties": false,
        "required": ["url"],
        "properties": {
            "method": {
                "type": "string",
                "enum": methods,
                "default": "GET",
                "title": "Method",
                "description": "HTTP method."
            },
            "url": {
                "type": "string",
                "format": "template",
                "minLength": 1,
                "title": "URL",
                "description": "Absolute http(s) URL; {{ expr }} is replaced by the expression's value."
            },
            "headers": template_map("Headers", "Request headers; values are templates, e.g. \"Bearer {{ secrets.API_TOKEN }}\"."),
            "query": template_map("Query parameters", "Added to the URL's query string; values are templates."),
            "body": {
                "format": "template",
                "title": "Body",
                "description": "JSON body. Every string inside is a template; a string that is exactly {{ expr }} takes the expression's JSON value."
            },
            "timeout_ms": {
                "type": "integer",
                "format": "duration-ms",
                "minimum": 1,
                "maximum": 300_000,
                "default": crate::definition::DEFAULT_TIMEOUT_MS,
                "title": "Timeout (ms)",
                "description": "Per-attempt timeout."
            },
            "retry": {
                "type": "object",
                "title": "Retry policy",
                "description": "Exponential backoff with full jitter; Retry-After is honoured. Timeouts and connection errors are always retried.",
                "additionalProperties": false,
                "default": {},
                "properties": {
                    "max_attempts": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 50,
                        "default": 5,
                        "title": "Max attempts",
                        "description": "Total attempts including the first (1 disables retries)."
                    },
                    "base_ms": {
                        "type": "integer",
                        "format": "duration-ms",
                        "minimum": 0,
                        "default": 1000,
                        "title": "Base delay (ms)",
                        "description": "Delay cap of the first retry; doubles on each further attempt."
                    },
                    "max_ms": {
                        "type": "integer",
                        "format": "duration-ms",
                        "minimum": 0,
                        "default": 300_000,
                        "title": "Max delay (ms)",
                        "description": "Upper bound of any single delay."
                    },
                    "retry_on_status": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 100, "maximum": 599},
                        "uniqueItems": true,
                        "title": "Retry on status",
                        "description": "Response statuses that are retried. Default: 408, 429 and every 5xx."
                    }
                }
            },
            "idempotency_key": {
                "type": "string",
                "format": "template",
                "minLength": 1,
                "title": "Idempotency key",
                "description": "Sent as the Idempotency-Key header. Default: derived from the run id and node id, the same on every attempt."
            }
        }
    })
}

fn branch_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "title": "Branch",
        "type": "object",
        "additionalProperties": false,
        "required": ["condition"],
        "properties": {
            "condition": expression_property(
                "Condition",
                "JMESPath over the run context; a truthy value follows the `true` edge, anything else (false, null, \"\", [], {}) the `false` edge."
            )
        }
    })
}

fn delay_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "title": "Delay",
        "type": "object",
        "additionalProperties": false,
        "oneOf": [
            {"required": ["duration_ms"], "title": "For a duration"},
            {"required": ["until"], "title": "Until a time"}
        ],
        "properties": {
            "duration_ms": {
                "type": "integer",
                "format": "duration-ms",
                "minimum": 0,
                "maximum": 31_536_000_000_u64,
                "title": "Duration (ms)",
                "description": "How long to wait (up to a year)."
            },
            "until": expression_property(
                "Until",
                "JMESPath yielding the time to wait until: an RFC 3339 timestamp or epoch milliseconds. A time in the past does not wait."
            )
        }
    })
}

fn terminate_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "title": "Terminate",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "status": {
                "type": "string",
                "enum": ["succeeded", "failed"],
                "default": "succeeded",
                "title": "Status",
                "description": "The run's final status."
            },
            "output": expression_property(
                "Output",
                "JMESPath over the run context; its value is the run's output (null when empty)."
            )
        }
    })
}

static ALL: LazyLock<Vec<NodeType>> = LazyLock::new(|| {
    vec![
        NodeType {
            r#type: "transform",
            title: "Transform",
            description: "Reshape data with a JMESPath expression over the run context.",
            config_schema: transform_schema(),
            outputs: vec!["default"],
            icon: "shuffle",
        },
        NodeType {
            r#type: "http_call",
            title: "HTTP call",
            description: "Call an HTTP API, with retries, timeouts and an idempotency key. Output: {status, headers, body}.",
            config_schema: http_call_schema(),
            outputs: vec!["default"],
            icon: "globe",
        },
        NodeType {
            r#type: "branch",
            title: "Branch",
            description: "Follow the `true` or the `false` edge depending on a condition. Output: {result}.",
            config_schema: branch_schema(),
            outputs: vec![
                crate::definition::TRUE_LABEL,
                crate::definition::FALSE_LABEL,
            ],
            icon: "git-branch",
        },
        NodeType {
            r#type: "delay",
            title: "Delay",
            description: "Wait for a duration or until a time, durably. Output: {until}.",
            config_schema: delay_schema(),
            outputs: vec!["default"],
            icon: "clock",
        },
        NodeType {
            r#type: "terminate",
            title: "Terminate",
            description: "End the run now with a status and an output.",
            config_schema: terminate_schema(),
            outputs: vec!["default"],
            icon: "flag",
        },
    ]
});

/// Every node type, in palette order.
pub fn all() -> Vec<NodeType> {
    ALL.clone()
}

/// One node type by name.
pub fn get(type_name: &str) -> Option<&'static NodeType> {
    ALL.iter().find(|t| t.r#type == type_name)
}

/// Compiled config validators, one per type (same order as [`TYPE_NAMES`]).
static VALIDATORS: LazyLock<Vec<(&'static str, jsonschema::Validator)>> = LazyLock::new(|| {
    ALL.iter()
        .map(|t| {
            let validator = jsonschema::options()
                .should_validate_formats(false)
                .build(&t.config_schema)
                .expect("the built-in node-type schemas are valid (tested)");
            (t.r#type, validator)
        })
        .collect()
});

/// The compiled validator of a type's config schema.
pub fn validator(type_name: &str) -> Option<&'static jsonschema::Validator> {
    VALIDATORS
        .iter()
        .find(|(name, _)| *name == type_name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit_properties(schema: &Value, path: &str, f: &mut impl FnMut(&str, &Value)) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let p = format!("{path}/{k}");
                f(&p, v);
                visit_properties(v, &p, f);
            }
        }
    }

    #[test]
    fn every_schema_compiles_and_is_closed() {
        assert_eq!(all().len(), TYPE_NAMES.len());
        for (t, name) in all().iter().zip(TYPE_NAMES) {
            assert_eq!(t.r#type, name);
            assert!(validator(name).is_some());
            assert_eq!(t.config_schema["additionalProperties"], false);
            assert_eq!(t.config_schema["$schema"], DIALECT);
            assert!(jsonschema::meta::is_valid(&t.config_schema), "{name}");
        }
    }

    #[test]
    fn every_property_has_title_and_description() {
        for t in all() {
            visit_properties(&t.config_schema, t.r#type, &mut |path, prop| {
                assert!(prop.get("title").is_some_and(Value::is_string), "{path}");
                assert!(
                    prop.get("description").is_some_and(Value::is_string),
                    "{path}"
                );
            });
        }
    }

    #[test]
    fn formats_annotate_fields() {
        let t = get("http_call").unwrap();
        assert_eq!(t.config_schema["properties"]["url"]["format"], "template");
        assert_eq!(
            t.config_schema["properties"]["timeout_ms"]["format"],
            "duration-ms"
        );
        assert_eq!(
            get("transform").unwrap().config_schema["properties"]["expression"]["format"],
            "jmespath"
        );
        assert_eq!(get("branch").unwrap().outputs, vec!["true", "false"]);
        assert_eq!(get("delay").unwrap().outputs, vec!["default"]);
    }

    #[test]
    fn serializes_like_the_api() {
        let v = serde_json::to_value(all()).unwrap();
        let first = &v[0];
        for key in [
            "type",
            "title",
            "description",
            "config_schema",
            "outputs",
            "icon",
        ] {
            assert!(first.get(key).is_some(), "{key}");
        }
        assert_eq!(first["type"], "transform");
    }

    #[test]
    fn schemas_accept_and_reject() {
        let http = validator("http_call").unwrap();
        assert!(http.is_valid(
            &serde_json::json!({"url": "https://x/{{ a }}", "retry": {"max_attempts": 3}})
        ));
        assert!(!http.is_valid(&serde_json::json!({"url": "https://x", "bogus": 1})));
        assert!(!http.is_valid(&serde_json::json!({"method": "FETCH", "url": "x"})));
        let delay = validator("delay").unwrap();
        assert!(delay.is_valid(&serde_json::json!({"duration_ms": 5})));
        assert!(delay.is_valid(&serde_json::json!({"until": "trigger.body.at"})));
        assert!(!delay.is_valid(&serde_json::json!({})));
        assert!(!delay.is_valid(&serde_json::json!({"duration_ms": 5, "until": "x"})));
        let terminate = validator("terminate").unwrap();
        assert!(terminate.is_valid(&serde_json::json!({})));
    }
}

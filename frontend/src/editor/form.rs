//! Config forms generated from a node type's JSON Schema
//! (`GET /api/v1/node-types`), and the as-you-type checks of JMESPath and
//! template fields, done by the core crate compiled to wasm.

use serde_json::{Map, Value};

/// How a string is read by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    Plain,
    /// A JMESPath expression over the run context.
    JmesPath,
    /// Text with `{{ expr }}` parts.
    Template,
}

/// The input a property gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Text(TextFormat),
    /// An integer; `duration` marks milliseconds.
    Integer {
        duration: bool,
    },
    Enum(Vec<String>),
    Bool,
    /// `{name: template}` (headers, query).
    TemplateMap,
    /// A list of integers (status codes).
    IntegerList,
    /// Any JSON, whose strings are templates (bodies).
    Json,
    /// A nested object with its own fields (retry policy).
    Group(Vec<Field>),
}

/// One form field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The property name in the config.
    pub key: String,
    pub title: String,
    pub description: String,
    pub required: bool,
    pub kind: Kind,
    /// The schema's default, shown as the placeholder.
    pub default: Option<Value>,
}

/// The fields of an object schema, in the schema's property order.
pub fn fields(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut fields: Vec<Field> = properties
        .iter()
        .map(|(key, prop)| Field {
            key: key.clone(),
            title: text(prop, "title").unwrap_or_else(|| key.clone()),
            description: text(prop, "description").unwrap_or_default(),
            required: required.contains(&key.as_str()),
            kind: kind(prop),
            default: prop.get("default").cloned(),
        })
        .collect();
    // JSON objects carry no key order, so the form orders fields itself:
    // required first, then short inputs before maps, bodies and groups.
    crate::sort::by_key(&mut fields, |f| {
        let rank = match f.kind {
            _ if f.required => 0,
            Kind::Enum(_) => 1,
            Kind::Integer { .. } => 2,
            Kind::Text(_) => 3,
            Kind::Bool => 4,
            Kind::IntegerList => 5,
            Kind::TemplateMap => 6,
            Kind::Json => 7,
            Kind::Group(_) => 8,
        };
        (rank, f.key.clone())
    });
    fields
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn kind(prop: &Value) -> Kind {
    let format = prop.get("format").and_then(Value::as_str);
    if let Some(options) = prop.get("enum").and_then(Value::as_array) {
        return Kind::Enum(
            options
                .iter()
                .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
                .collect(),
        );
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => Kind::Text(match format {
            Some("jmespath") => TextFormat::JmesPath,
            Some("template") => TextFormat::Template,
            _ => TextFormat::Plain,
        }),
        Some("integer" | "number") => Kind::Integer {
            duration: format == Some("duration-ms"),
        },
        Some("boolean") => Kind::Bool,
        Some("array") => Kind::IntegerList,
        Some("object") if prop.get("properties").is_some() => Kind::Group(fields(prop)),
        Some("object") => Kind::TemplateMap,
        _ => Kind::Json,
    }
}

/// A problem in a field, with the character position it starts at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub position: Option<usize>,
    pub message: String,
}

impl Problem {
    /// `at 7: unexpected token` or the message alone.
    pub fn describe(&self) -> String {
        match self.position {
            Some(p) => format!("at position {p}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Checks a string field as the engine will read it.
pub fn check_text(format: TextFormat, required: bool, value: &str) -> Option<Problem> {
    if value.is_empty() {
        return required.then(|| Problem {
            position: None,
            message: "is required".into(),
        });
    }
    match format {
        TextFormat::Plain => None,
        TextFormat::JmesPath => meshhook_core::expr::compile(value).err().map(|e| Problem {
            position: e.position,
            message: e.message,
        }),
        TextFormat::Template => meshhook_core::template::compile(value)
            .err()
            .map(|e| Problem {
                position: Some(e.position),
                message: e.message,
            }),
    }
}

/// Checks every string inside a JSON body as a template.
pub fn check_json_templates(value: &Value) -> Option<Problem> {
    meshhook_core::template::check(value)
        .into_iter()
        .next()
        .map(|e| Problem {
            position: Some(e.position),
            message: if e.path.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.path, e.message)
            },
        })
}

/// Reads an integer field; empty means "use the default" (`None`).
pub fn parse_integer(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim().replace('_', "");
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("`{text}` is not a whole number"))
}

/// Reads a list of integers written as `408, 429, 500`.
pub fn parse_integer_list(text: &str) -> Result<Option<Vec<i64>>, String> {
    let parts: Vec<&str> = text
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    parts
        .iter()
        .map(|p| {
            p.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{p}` is not a whole number"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A millisecond count in words: `90000` → `1 min 30 s`.
pub fn human_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let mut parts = Vec::new();
    let mut rest = ms / 1000;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("min", 60), ("s", 1)] {
        if rest >= size {
            parts.push(format!("{} {unit}", rest / size));
            rest %= size;
        }
    }
    if ms % 1000 != 0 {
        parts.push(format!("{} ms", ms % 1000));
    }
    parts.join(" ")
}

/// `{name: value}` as editable rows, in key order.
pub fn map_rows(value: Option<&Value>) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // serde_json keeps insertion order when a crate in the build enables
    // `preserve_order`: sort, so the form is the same either way.
    crate::sort::by_key(&mut rows, |(k, _)| k.clone());
    rows
}

/// Editable rows back to a map; rows without a name are dropped.
pub fn rows_to_map(rows: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (k, v) in rows {
        if !k.trim().is_empty() {
            map.insert(k.trim().to_owned(), Value::String(v.clone()));
        }
    }
    Value::Object(map)
}

/// The config of a node just dropped on the canvas: the required
/// properties with a starter value that shows what goes there.
pub fn starter_config(kind: &str) -> Value {
    use serde_json::json;
    match kind {
        "transform" => json!({"expression": "trigger.body"}),
        "http_call" => json!({"method": "POST", "url": "https://example.com/hook"}),
        "branch" => json!({"condition": "trigger.body.ok"}),
        "delay" => json!({"duration_ms": 1000}),
        "terminate" => json!({"status": "succeeded"}),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "method": {"type": "string", "enum": ["GET", "POST"], "default": "GET", "title": "Method"},
                "url": {"type": "string", "format": "template", "title": "URL", "description": "Where"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"format": "template", "title": "Body"},
                "timeout_ms": {"type": "integer", "format": "duration-ms", "default": 30000},
                "retry": {"type": "object", "properties": {
                    "max_attempts": {"type": "integer"},
                    "retry_on_status": {"type": "array", "items": {"type": "integer"}}
                }},
                "condition": {"type": "string", "format": "jmespath"},
                "flag": {"type": "boolean"}
            }
        })
    }

    #[test]
    fn every_schema_shape_gets_its_input() {
        let f = fields(&schema());
        let kinds: Vec<(&str, &Kind)> = f.iter().map(|f| (f.key.as_str(), &f.kind)).collect();
        assert_eq!(
            kinds[0],
            ("url", &Kind::Text(TextFormat::Template)),
            "required first"
        );
        assert_eq!(
            kinds[1],
            ("method", &Kind::Enum(vec!["GET".into(), "POST".into()]))
        );
        assert_eq!(kinds[2], ("timeout_ms", &Kind::Integer { duration: true }));
        assert_eq!(kinds[3], ("condition", &Kind::Text(TextFormat::JmesPath)));
        assert_eq!(kinds[4], ("flag", &Kind::Bool));
        assert_eq!(kinds[5], ("headers", &Kind::TemplateMap));
        assert_eq!(kinds[6], ("body", &Kind::Json));
        let Kind::Group(inner) = kinds[7].1 else {
            panic!("retry is a group: {:?}", kinds[7]);
        };
        assert_eq!(inner[1].kind, Kind::IntegerList);
        assert!(f[0].required && !f[1].required);
        assert_eq!(f[0].title, "URL");
        assert_eq!(f[0].description, "Where");
        assert_eq!(
            f[5].title, "headers",
            "the key stands in for a missing title"
        );
        assert_eq!(f[2].default, Some(json!(30000)));
    }

    #[test]
    fn the_real_node_type_schemas_all_produce_forms() {
        for t in meshhook_core::node_types::all() {
            let f = fields(&t.config_schema);
            assert!(!f.is_empty(), "{}", t.r#type);
            assert!(
                f.iter()
                    .all(|f| !f.title.is_empty() && !f.description.is_empty())
            );
        }
    }

    #[test]
    fn expressions_and_templates_are_checked_with_positions() {
        assert_eq!(
            check_text(TextFormat::JmesPath, true, "trigger.body.items[0]"),
            None
        );
        let p = check_text(TextFormat::JmesPath, true, "trigger.[").unwrap();
        assert!(p.position.is_some(), "{p:?}");
        assert!(p.describe().starts_with("at position"));
        assert_eq!(
            check_text(TextFormat::JmesPath, true, "").unwrap().message,
            "is required"
        );
        assert_eq!(check_text(TextFormat::JmesPath, false, ""), None);
        assert_eq!(
            check_text(TextFormat::Template, true, "https://x/{{ steps.a.id }}"),
            None
        );
        let t = check_text(TextFormat::Template, true, "https://x/{{ steps.a. }}").unwrap();
        assert!(t.position.unwrap() >= 10, "{t:?}");
        assert_eq!(check_text(TextFormat::Plain, true, "anything {{"), None);
        assert!(check_json_templates(&json!({"a": ["{{ x.[ }}"]})).is_some());
        assert_eq!(check_json_templates(&json!({"a": "{{ x }}"})), None);
    }

    #[test]
    fn numbers_lists_durations_and_maps() {
        assert_eq!(parse_integer(" 30_000 "), Ok(Some(30000)));
        assert_eq!(parse_integer(""), Ok(None));
        assert!(parse_integer("1.5").is_err());
        assert_eq!(
            parse_integer_list("408, 429 500"),
            Ok(Some(vec![408, 429, 500]))
        );
        assert_eq!(parse_integer_list(" "), Ok(None));
        assert!(parse_integer_list("4x").is_err());
        assert_eq!(human_duration(500), "500 ms");
        assert_eq!(human_duration(90_000), "1 min 30 s");
        assert_eq!(human_duration(86_401_500), "1 d 1 s 500 ms");
        let rows = map_rows(Some(&json!({"B": "2", "A": "1"})));
        assert_eq!(
            rows,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        let mut edited = rows.clone();
        edited.push((" ".into(), "dropped".into()));
        assert_eq!(rows_to_map(&edited), json!({"A": "1", "B": "2"}));
    }

    #[test]
    fn starter_configs_are_valid_for_their_types() {
        for t in meshhook_core::node_types::all() {
            let config = starter_config(t.r#type);
            let def =
                json!({"nodes": [{"id": "n", "type": t.r#type, "config": config}], "edges": []});
            // A lone branch lacks its edges; its config must still be fine.
            let issues = meshhook_core::validate::validate(&def)
                .err()
                .unwrap_or_default();
            assert!(
                issues
                    .iter()
                    .all(|i| !i.path.starts_with("/nodes/0/config")),
                "{}: {issues:?}",
                t.r#type
            );
        }
    }
}

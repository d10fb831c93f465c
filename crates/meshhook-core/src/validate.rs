//! Validation of untrusted definition JSON, reporting every problem at once
//! with a JSON pointer to the offending field (`/nodes/2/config/url`).
//!
//! Checks: the overall shape; per node a unique, well-formed id, a known
//! type, a config that satisfies the type's JSON Schema, JMESPath and
//! `{{ }}` templates that compile (and only read `trigger`, `steps.<node>`
//! and `run`); per edge known endpoints and no duplicates; for the graph one
//! entry node, no cycles, no unreachable nodes, and correct edge labels
//! (`true`/`false` on branch nodes, none elsewhere).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::definition::{
    Definition, DelayConfig, Edge, FALSE_LABEL, Node, NodeConfig, Position, TRUE_LABEL,
};
use crate::template::pointer_escape;
use crate::{expr, node_types, template};

/// One problem, located by a JSON pointer into the submitted definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// JSON pointer (RFC 6901), e.g. `/nodes/2/config/url`; `""` for the
    /// document itself.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl Issue {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The longest node id accepted.
pub const MAX_NODE_ID_LEN: usize = 64;

/// Root fields of the run context that expressions may read.
pub const CONTEXT_FIELDS: [&str; 3] = ["trigger", "steps", "run"];

/// Whether `id` is a valid node id: 1 to 64 characters out of
/// `[A-Za-z0-9_-]`. (Ids with `-` or a leading digit must be quoted in
/// JMESPath: `steps."my-node"`.)
pub fn is_valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Validates untrusted definition JSON. On success returns the typed
/// definition; otherwise every issue found, in document order (node and
/// edge problems first, then graph problems).
pub fn validate(raw: &Value) -> Result<Definition, Vec<Issue>> {
    let mut issues = Vec::new();
    let Some(obj) = raw.as_object() else {
        return Err(vec![Issue::new("", "a definition must be a JSON object")]);
    };
    for key in obj.keys() {
        if key != "nodes" && key != "edges" {
            issues.push(Issue::new(
                format!("/{}", pointer_escape(key)),
                "unknown property (a definition has `nodes` and `edges`)",
            ));
        }
    }

    // Nodes.
    let mut nodes: Vec<Parsed> = Vec::new();
    match obj.get("nodes") {
        None => issues.push(Issue::new("/nodes", "is required")),
        Some(Value::Array(items)) if items.is_empty() => {
            issues.push(Issue::new("/nodes", "a workflow needs at least one node"))
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                nodes.push(parse_node(i, item, &mut issues));
            }
        }
        Some(_) => issues.push(Issue::new("/nodes", "must be an array")),
    }

    // Node ids: index of the first node with each id (whether or not the
    // rest of the node is valid, to avoid follow-up noise).
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, parsed) in nodes.iter().enumerate() {
        if let Some(id) = &parsed.id {
            if let Some(&first) = ids.get(id.as_str()) {
                issues.push(Issue::new(
                    format!("/nodes/{i}/id"),
                    format!("duplicate node id `{id}` (already used by /nodes/{first})"),
                ));
            } else {
                ids.insert(id, i);
            }
        }
    }
    // Expressions may name other steps: check those references now that
    // every id is known.
    for (i, parsed) in nodes.iter().enumerate() {
        if let Some(node) = &parsed.node {
            check_expressions(i, node, &ids, &mut issues);
        }
    }

    // Edges.
    let mut edges: Vec<Option<Edge>> = Vec::new();
    match obj.get("edges") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (j, item) in items.iter().enumerate() {
                edges.push(parse_edge(j, item, &ids, &mut issues));
            }
        }
        Some(_) => issues.push(Issue::new("/edges", "must be an array")),
    }

    check_graph(&nodes, &ids, &edges, &mut issues);

    if issues.is_empty() {
        Ok(Definition {
            nodes: nodes.into_iter().filter_map(|p| p.node).collect(),
            edges: edges.into_iter().flatten().collect(),
        })
    } else {
        Err(issues)
    }
}

/// Validates an already-typed definition (e.g. one built in code).
pub fn check(definition: &Definition) -> Vec<Issue> {
    match serde_json::to_value(definition) {
        Ok(raw) => validate(&raw).err().unwrap_or_default(),
        Err(e) => vec![Issue::new("", format!("not serializable: {e}"))],
    }
}

/// What could be read of one node.
#[derive(Default)]
struct Parsed {
    id: Option<String>,
    type_name: Option<&'static str>,
    /// Present when the whole node is valid.
    node: Option<Node>,
}

fn parse_node(i: usize, item: &Value, issues: &mut Vec<Issue>) -> Parsed {
    let base = format!("/nodes/{i}");
    let Some(obj) = item.as_object() else {
        issues.push(Issue::new(base, "a node must be an object"));
        return Parsed::default();
    };
    let before = issues.len();
    for key in obj.keys() {
        if !matches!(key.as_str(), "id" | "type" | "config" | "position") {
            issues.push(Issue::new(
                format!("{base}/{}", pointer_escape(key)),
                "unknown property (a node has `id`, `type`, `config` and `position`)",
            ));
        }
    }
    let id = match obj.get("id") {
        None => {
            issues.push(Issue::new(format!("{base}/id"), "is required"));
            None
        }
        Some(Value::String(id)) if is_valid_node_id(id) => Some(id.clone()),
        Some(Value::String(_)) => {
            issues.push(Issue::new(
                format!("{base}/id"),
                format!(
                    "must be 1 to {MAX_NODE_ID_LEN} characters of letters, digits, `_` and `-`"
                ),
            ));
            None
        }
        Some(_) => {
            issues.push(Issue::new(format!("{base}/id"), "must be a string"));
            None
        }
    };
    let type_name = match obj.get("type") {
        None => {
            issues.push(Issue::new(format!("{base}/type"), "is required"));
            None
        }
        Some(Value::String(t)) if node_types::get(t).is_some() => {
            node_types::get(t).map(|t| t.r#type)
        }
        Some(other) => {
            issues.push(Issue::new(
                format!("{base}/type"),
                format!(
                    "unknown node type {other}; expected one of {}",
                    node_types::TYPE_NAMES.join(", ")
                ),
            ));
            None
        }
    };
    let position = match obj.get("position") {
        None | Some(Value::Null) => None,
        Some(p) => match serde_json::from_value::<Position>(p.clone()) {
            Ok(p) => Some(p),
            Err(_) => {
                issues.push(Issue::new(
                    format!("{base}/position"),
                    "must be an object with numbers `x` and `y`",
                ));
                None
            }
        },
    };
    let config = obj.get("config");
    if config.is_none() {
        issues.push(Issue::new(format!("{base}/config"), "is required"));
    }
    let mut parsed = Parsed {
        id,
        type_name,
        node: None,
    };
    let (Some(type_name), Some(config)) = (type_name, config) else {
        return parsed;
    };
    let config_base = format!("{base}/config");
    if let Some(validator) = node_types::validator(type_name) {
        for error in validator.iter_errors(config) {
            issues.extend(schema_issues(&config_base, type_name, &error));
        }
    }
    if issues.len() > before {
        return parsed;
    }
    let tagged = Value::Object(Map::from_iter([
        ("type".to_owned(), Value::String(type_name.to_owned())),
        ("config".to_owned(), config.clone()),
    ]));
    let kind = match serde_json::from_value::<NodeConfig>(tagged) {
        Ok(kind) => kind,
        Err(e) => {
            // The schema and the Rust types agree, so this is a backstop.
            issues.push(Issue::new(config_base, format!("invalid config: {e}")));
            return parsed;
        }
    };
    parsed.node = parsed.id.clone().map(|id| Node { id, kind, position });
    parsed
}

/// Turns one JSON Schema error into issues with paths under `base`.
fn schema_issues(
    base: &str,
    type_name: &str,
    error: &jsonschema::ValidationError<'_>,
) -> Vec<Issue> {
    use jsonschema::error::ValidationErrorKind as K;
    let path = format!("{base}{}", error.instance_path().as_str());
    match error.kind() {
        K::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            vec![Issue::new(
                format!("{path}/{}", pointer_escape(&name)),
                "is required",
            )]
        }
        K::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|p| {
                Issue::new(
                    format!("{path}/{}", pointer_escape(p)),
                    format!("unknown property for a `{type_name}` node"),
                )
            })
            .collect(),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } if type_name == "delay" => {
            vec![Issue::new(
                path,
                "needs exactly one of `duration_ms` or `until`",
            )]
        }
        K::Enum { options } => vec![Issue::new(path, format!("must be one of {options}"))],
        _ => vec![Issue::new(path, error.to_string())],
    }
}

/// Compiles every expression and template of a node.
fn check_expressions(i: usize, node: &Node, ids: &BTreeMap<&str, usize>, issues: &mut Vec<Issue>) {
    let base = format!("/nodes/{i}/config");
    let mut expression = |field: &str, source: &str| {
        let path = format!("{base}/{field}");
        match expr::compile(source) {
            Ok(e) => check_references(&path, &e, 0, ids, false, issues),
            Err(e) => issues.push(Issue::new(path, format!("invalid JMESPath {e}"))),
        }
    };
    match &node.kind {
        NodeConfig::Transform(c) => expression("expression", &c.expression),
        NodeConfig::Branch(c) => expression("condition", &c.condition),
        NodeConfig::Delay(DelayConfig::Until { until }) => expression("until", until),
        NodeConfig::Delay(DelayConfig::Duration { .. }) => {}
        NodeConfig::Terminate(c) => {
            if let Some(output) = &c.output {
                expression("output", output);
            }
        }
        NodeConfig::HttpCall(c) => {
            let mut fields: Vec<(String, Value)> =
                vec![("url".into(), Value::String(c.url.clone()))];
            for (k, v) in &c.headers {
                fields.push((
                    format!("headers/{}", pointer_escape(k)),
                    Value::String(v.clone()),
                ));
            }
            for (k, v) in &c.query {
                fields.push((
                    format!("query/{}", pointer_escape(k)),
                    Value::String(v.clone()),
                ));
            }
            if let Some(body) = &c.body {
                fields.push(("body".into(), body.clone()));
            }
            if let Some(key) = &c.idempotency_key {
                fields.push(("idempotency_key".into(), Value::String(key.clone())));
            }
            for (field, value) in fields {
                check_template_value(&format!("{base}/{field}"), &value, ids, issues);
            }
        }
    }
}

fn check_template_value(
    path: &str,
    value: &Value,
    ids: &BTreeMap<&str, usize>,
    issues: &mut Vec<Issue>,
) {
    match value {
        Value::String(s) => match template::compile(s) {
            Ok(t) => {
                for e in t.expressions() {
                    // Template expressions are checked for references too;
                    // positions inside templates are not tracked here.
                    check_references(path, e, 0, ids, true, issues);
                }
            }
            Err(e) => issues.push(Issue::new(
                path,
                format!("invalid template at position {}: {}", e.position, e.message),
            )),
        },
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_template_value(&format!("{path}/{i}"), v, ids, issues);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                check_template_value(&format!("{path}/{}", pointer_escape(k)), v, ids, issues);
            }
        }
        _ => {}
    }
}

/// Expressions see `{trigger, steps, run}`: flag reads of anything else,
/// and of `steps.<id>` for ids that are not nodes.
fn check_references(
    path: &str,
    e: &expr::Expression,
    offset: usize,
    ids: &BTreeMap<&str, usize>,
    in_template: bool,
    issues: &mut Vec<Issue>,
) {
    for field in expr::root_fields(e) {
        let position = offset + field.position;
        let Some(root) = field.path.first() else {
            continue;
        };
        let message = if root == "secrets" {
            Some(if in_template {
                "a secret can only be used on its own, as `{{ secrets.NAME }}`".to_owned()
            } else {
                "secrets are only available in http_call templates, as `{{ secrets.NAME }}`"
                    .to_owned()
            })
        } else if !CONTEXT_FIELDS.contains(&root.as_str()) {
            Some(format!(
                "`{root}` is not part of the run context; expressions read `trigger`, `steps` and `run` (e.g. `trigger.body.{root}`)"
            ))
        } else if root == "steps" {
            field
                .path
                .get(1)
                .filter(|id| !ids.contains_key(id.as_str()))
                .map(|id| format!("`steps.{id}` refers to no node of this workflow"))
        } else {
            None
        };
        if let Some(message) = message {
            let message = if in_template {
                message
            } else {
                format!("at position {position}: {message}")
            };
            issues.push(Issue::new(path, message));
        }
    }
}

fn parse_edge(
    j: usize,
    item: &Value,
    ids: &BTreeMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> Option<Edge> {
    let base = format!("/edges/{j}");
    let Some(obj) = item.as_object() else {
        issues.push(Issue::new(base, "an edge must be an object"));
        return None;
    };
    let before = issues.len();
    for key in obj.keys() {
        if !matches!(key.as_str(), "from" | "to" | "label") {
            issues.push(Issue::new(
                format!("{base}/{}", pointer_escape(key)),
                "unknown property (an edge has `from`, `to` and `label`)",
            ));
        }
    }
    let mut endpoint = |field: &str| -> Option<String> {
        let path = format!("{base}/{field}");
        match obj.get(field) {
            None => {
                issues.push(Issue::new(path, "is required"));
                None
            }
            Some(Value::String(id)) if ids.contains_key(id.as_str()) => Some(id.clone()),
            Some(Value::String(id)) => {
                issues.push(Issue::new(path, format!("unknown node `{id}`")));
                None
            }
            Some(_) => {
                issues.push(Issue::new(path, "must be a node id (a string)"));
                None
            }
        }
    };
    let from = endpoint("from");
    let to = endpoint("to");
    let label = match obj.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) => Some(l.clone()),
        Some(_) => {
            issues.push(Issue::new(format!("{base}/label"), "must be a string"));
            None
        }
    };
    if issues.len() > before {
        return None;
    }
    Some(Edge {
        from: from?,
        to: to?,
        label,
    })
}

fn check_graph(
    nodes: &[Parsed],
    ids: &BTreeMap<&str, usize>,
    edges: &[Option<Edge>],
    issues: &mut Vec<Issue>,
) {
    // Only the first node with each id takes part in graph checks.
    let valid: Vec<(usize, &str, Option<&'static str>)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.id.as_deref().map(|id| (i, id, n.type_name)))
        .filter(|(i, id, _)| ids.get(id) == Some(i))
        .collect();
    let type_of: BTreeMap<&str, &'static str> = valid
        .iter()
        .filter_map(|(_, id, t)| t.map(|t| (*id, t)))
        .collect();

    // Duplicate edges and labels.
    let mut seen: BTreeMap<(&str, &str, Option<&str>), usize> = BTreeMap::new();
    let mut adjacency: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    let mut has_incoming: BTreeSet<&str> = BTreeSet::new();
    for (j, edge) in edges.iter().enumerate() {
        let Some(edge) = edge else { continue };
        let key = (edge.from.as_str(), edge.to.as_str(), edge.label.as_deref());
        if let Some(first) = seen.get(&key) {
            issues.push(Issue::new(
                format!("/edges/{j}"),
                format!("duplicate of /edges/{first}"),
            ));
            continue;
        }
        seen.insert(key, j);
        adjacency.entry(&edge.from).or_default().push((j, &edge.to));
        has_incoming.insert(&edge.to);

        match (
            type_of.get(edge.from.as_str()).copied(),
            edge.label.as_deref(),
        ) {
            (Some("branch"), None) => issues.push(Issue::new(
                format!("/edges/{j}"),
                "an edge leaving a branch node needs the label `true` or `false`",
            )),
            (Some("branch"), Some(l)) if l != TRUE_LABEL && l != FALSE_LABEL => {
                issues.push(Issue::new(
                    format!("/edges/{j}/label"),
                    format!("must be `true` or `false`, not `{l}`"),
                ));
            }
            (Some(kind), Some(_)) if kind != "branch" => {
                issues.push(Issue::new(
                    format!("/edges/{j}/label"),
                    format!("edges leaving a `{kind}` node take no label"),
                ));
            }
            _ => {}
        }
    }

    // Branch nodes: exactly one `true` and one `false` edge.
    for (i, id, type_name) in &valid {
        if *type_name != Some("branch") {
            continue;
        }
        for label in [TRUE_LABEL, FALSE_LABEL] {
            let count = edges
                .iter()
                .flatten()
                .filter(|e| e.from == *id && e.label.as_deref() == Some(label))
                .map(|e| &e.to)
                .collect::<BTreeSet<_>>()
                .len();
            if count != 1 {
                issues.push(Issue::new(
                    format!("/nodes/{i}"),
                    format!("a branch node needs exactly one `{label}` edge (it has {count})"),
                ));
            }
        }
    }

    if valid.is_empty() {
        return;
    }

    // Exactly one entry node.
    let entries: Vec<(usize, &str)> = valid
        .iter()
        .filter(|(_, id, _)| !has_incoming.contains(id))
        .map(|(i, id, _)| (*i, *id))
        .collect();
    let entry_ids: Vec<&str> = entries.iter().map(|(_, id)| *id).collect();
    match entries.as_slice() {
        [] => issues.push(Issue::new(
            "/nodes",
            "no entry node: every node has an incoming edge (the graph is a cycle)",
        )),
        [_] => {}
        several => {
            for (i, id) in several {
                issues.push(Issue::new(
                    format!("/nodes/{i}"),
                    format!(
                        "node `{id}` has no incoming edge, but a workflow has exactly one entry node (found: {})",
                        entry_ids.join(", ")
                    ),
                ));
            }
        }
    }

    // Cycles: report each edge that closes one (a DFS back edge).
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on stack, 2 = done
    for (_, start, _) in &valid {
        if state.contains_key(start) {
            continue;
        }
        // Iterative DFS keeping the path for messages.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let succ = adjacency.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&(j, to)) = succ.get(*next) {
                *next += 1;
                match state.get(to) {
                    Some(1) => {
                        let from_pos = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let mut cycle: Vec<&str> =
                            stack[from_pos..].iter().map(|(n, _)| *n).collect();
                        cycle.push(to);
                        issues.push(Issue::new(
                            format!("/edges/{j}"),
                            format!("this edge closes a cycle: {}", cycle.join(" -> ")),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        state.insert(to, 1);
                        stack.push((to, 0));
                    }
                }
            } else {
                state.insert(node, 2);
                stack.pop();
            }
        }
    }

    // Reachability from the (single) entry.
    if let [(_, entry)] = entries.as_slice() {
        let mut reached: BTreeSet<&str> = BTreeSet::from([*entry]);
        let mut queue = vec![*entry];
        while let Some(n) = queue.pop() {
            for (_, to) in adjacency.get(n).map_or(&[][..], Vec::as_slice) {
                if reached.insert(to) {
                    queue.push(to);
                }
            }
        }
        for (i, id, _) in &valid {
            if !reached.contains(id) {
                issues.push(Issue::new(
                    format!("/nodes/{i}"),
                    format!("node `{id}` is unreachable from the entry node `{entry}`"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::api_example;
    use serde_json::json;

    fn issues(v: Value) -> Vec<(String, String)> {
        validate(&v)
            .unwrap_err()
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect()
    }

    fn paths(v: Value) -> Vec<String> {
        issues(v).into_iter().map(|(p, _)| p).collect()
    }

    fn t(id: &str) -> Value {
        json!({"id": id, "type": "transform", "config": {"expression": "trigger.body"}})
    }

    #[test]
    fn accepts_the_api_example_without_the_orphan() {
        let mut v = api_example();
        // The example's `wait` node has no edges: a second entry node.
        let p = paths(v.clone());
        assert_eq!(p, vec!["/nodes/0", "/nodes/5"]);
        v["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "done", "to": "wait"}));
        let def = validate(&v).unwrap();
        assert_eq!(def.nodes.len(), 6);
        assert!(check(&def).is_empty());
    }

    #[test]
    fn rejects_non_objects_and_missing_nodes() {
        assert_eq!(paths(json!([])), vec![""]);
        assert_eq!(paths(json!({})), vec!["/nodes"]);
        assert_eq!(paths(json!({"nodes": []})), vec!["/nodes"]);
        assert_eq!(
            paths(json!({"nodes": {}, "extra": 1})),
            vec!["/extra", "/nodes"]
        );
        assert_eq!(
            paths(json!({"nodes": [t("a")], "edges": 3})),
            vec!["/edges"]
        );
    }

    #[test]
    fn reports_all_node_problems_at_once() {
        let got = issues(json!({"nodes": [
            {"type": "transform", "config": {"expression": "trigger"}},
            {"id": "b", "type": "nope", "config": {}},
            {"id": "c c", "type": "transform", "config": {"expression": "trigger"}},
            {"id": "d", "type": "http_call", "config": {"method": "FETCH", "extra": 1}, "position": {"x": "1"}},
            {"id": "e", "type": "transform", "config": {"expression": "foo.["}},
            {"id": "e", "type": "transform", "config": {"expression": "trigger"}},
            {"id": "f", "type": "delay", "config": {"duration_ms": 1, "until": "trigger.at"}},
            {"id": "g", "type": "transform"},
            {"id": "h", "type": "http_call", "config": {"url": "https://x/{{ trigger.", "headers": {"A/b": "{{ }}"}, "body": {"k": ["{{ trigger.body }}", "{{ x.[ }}"]}}},
        ]}));
        let p: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        for expected in [
            "/nodes/0/id",
            "/nodes/1/type",
            "/nodes/2/id",
            "/nodes/3/position",
            "/nodes/3/config/method",
            "/nodes/3/config/extra",
            "/nodes/3/config/url",
            "/nodes/4/config/expression",
            "/nodes/5/id",
            "/nodes/6/config",
            "/nodes/7/config",
            "/nodes/8/config/url",
            "/nodes/8/config/headers/A~1b",
            "/nodes/8/config/body/k/1",
        ] {
            assert!(p.contains(&expected), "missing {expected} in {got:#?}");
        }
        let expr_msg = &got
            .iter()
            .find(|(p, _)| p == "/nodes/4/config/expression")
            .unwrap()
            .1;
        assert!(expr_msg.contains("position"), "{expr_msg}");
        let url_msg = &got
            .iter()
            .find(|(p, _)| p == "/nodes/8/config/url")
            .unwrap()
            .1;
        assert!(url_msg.contains("position 10"), "{url_msg}");
        assert!(!p.contains(&"/nodes/8/config/body/k/0"));
    }

    #[test]
    fn checks_references_in_expressions() {
        let got = issues(json!({"nodes": [
            {"id": "a", "type": "transform", "config": {"expression": "{x: body.user, y: steps.nope.x, z: steps.a, w: run.id}"}},
            {"id": "b", "type": "http_call", "config": {"url": "https://x/{{ steps.a.id }}{{ secrets.T }}", "body": "{{ to_string(secrets.T) }}"}},
            {"id": "c", "type": "branch", "config": {"condition": "secrets.T"}},
            {"id": "d", "type": "terminate", "config": {}},
        ], "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d", "label": "true"}, {"from": "c", "to": "d", "label": "false"}]}));
        let p: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            p,
            vec![
                "/nodes/0/config/expression",
                "/nodes/0/config/expression",
                "/nodes/1/config/body",
                "/nodes/2/config/condition"
            ],
            "{got:#?}"
        );
        assert!(got[0].1.contains("`body` is not part of the run context"));
        assert!(got[1].1.contains("steps.nope"));
    }

    #[test]
    fn edges_must_point_at_nodes_and_be_unique() {
        let got = paths(json!({"nodes": [t("a"), t("b")], "edges": [
            {"from": "a", "to": "b"},
            {"from": "a", "to": "zz"},
            {"from": 3, "to": "b", "x": 1},
            {"from": "a", "to": "b"},
            "nope",
            {"from": "a", "to": "b", "label": "true"}
        ]}));
        assert_eq!(
            got,
            vec![
                "/edges/1/to",
                "/edges/2/x",
                "/edges/2/from",
                "/edges/4",
                "/edges/3",
                "/edges/5/label"
            ]
        );
    }

    #[test]
    fn graph_rules() {
        // Several entry nodes.
        assert_eq!(
            paths(json!({"nodes": [t("a"), t("b")]})),
            vec!["/nodes/0", "/nodes/1"]
        );
        // A cycle reachable from the entry.
        let got = issues(json!({"nodes": [t("a"), t("b"), t("c")], "edges": [
            {"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}
        ]}));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "/edges/2");
        assert!(got[0].1.contains("b -> c -> b"));
        // A self loop; an unreachable cycle.
        let got = paths(json!({"nodes": [t("a"), t("b"), t("c"), t("d")], "edges": [
            {"from": "a", "to": "a"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}, {"from": "d", "to": "d"}
        ]}));
        assert_eq!(got, vec!["/nodes", "/edges/0", "/edges/2", "/edges/3"]);
        let got = paths(json!({"nodes": [t("a"), t("b"), t("c")], "edges": [
            {"from": "a", "to": "a"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}
        ]}));
        assert_eq!(got, vec!["/nodes", "/edges/0", "/edges/2"]);
        let got = paths(json!({"nodes": [t("e"), t("a"), t("b")], "edges": [
            {"from": "a", "to": "b"}, {"from": "b", "to": "a"}
        ]}));
        assert_eq!(got, vec!["/edges/1", "/nodes/1", "/nodes/2"]);
    }

    #[test]
    fn branch_edges_need_labels() {
        let b = json!({"id": "b", "type": "branch", "config": {"condition": "trigger.ok"}});
        let got = issues(json!({"nodes": [b, t("x"), t("y")], "edges": [
            {"from": "b", "to": "x"}, {"from": "b", "to": "y", "label": "maybe"}
        ]}));
        let p: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            p,
            vec!["/edges/0", "/edges/1/label", "/nodes/0", "/nodes/0"]
        );
        let got = issues(json!({"nodes": [b, t("x"), t("y")], "edges": [
            {"from": "b", "to": "x", "label": "true"}, {"from": "b", "to": "y", "label": "true"}
        ]}));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].1.contains("exactly one `true` edge (it has 2)"));
        assert!(got[1].1.contains("exactly one `false` edge (it has 0)"));
        let ok = json!({"nodes": [b, t("x"), t("y")], "edges": [
            {"from": "b", "to": "x", "label": "true"}, {"from": "b", "to": "y", "label": "false"}
        ]});
        assert!(validate(&ok).is_ok());
    }

    #[test]
    fn delay_needs_exactly_one_mode() {
        let got = issues(json!({"nodes": [{"id": "d", "type": "delay", "config": {}}]}));
        assert_eq!(
            got,
            vec![(
                "/nodes/0/config".to_owned(),
                "needs exactly one of `duration_ms` or `until`".to_owned()
            )]
        );
        let got = issues(json!({"nodes": [{"id": "d", "type": "transform", "config": {}}]}));
        assert_eq!(
            got,
            vec![(
                "/nodes/0/config/expression".to_owned(),
                "is required".to_owned()
            )]
        );
    }
}

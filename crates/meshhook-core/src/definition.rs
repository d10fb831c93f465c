//! The workflow definition: a DAG of typed nodes joined by edges.
//!
//! The JSON shape is the public contract (API.md, "Definition"):
//! `{"nodes": [{"id", "type", "config", "position"?}], "edges": [{"from", "to", "label"?}]}`.
//! Deserializing does not validate: use [`crate::validate::validate`] on
//! untrusted input, which reports every problem with a JSON pointer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The nodes, in the order the author placed them.
    pub nodes: Vec<Node>,
    /// Directed edges between nodes.
    #[serde(default)]
    pub edges: Vec<Edge>,
}

/// One node: an id unique in its definition, a typed config, and where the
/// editor draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique id; expressions read this node's output as `steps.<id>`.
    pub id: String,
    /// The node type and its config (`"type"` and `"config"` in JSON).
    #[serde(flatten)]
    pub kind: NodeConfig,
    /// Canvas position, for the editor only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// A canvas position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate.
    pub y: f64,
}

/// A directed edge. Edges leaving a `branch` node carry the label `"true"`
/// or `"false"`; all other edges carry none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Output port of the source (`"true"`/`"false"` for branch nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The node type with its typed config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case")]
pub enum NodeConfig {
    /// Evaluate a JMESPath expression over the run context.
    Transform(TransformConfig),
    /// Make an HTTP request.
    HttpCall(HttpCallConfig),
    /// Choose the `true` or `false` edge.
    Branch(BranchConfig),
    /// Wait for a duration or until a time.
    Delay(DelayConfig),
    /// End the run with a status and an output.
    Terminate(TerminateConfig),
}

impl NodeConfig {
    /// The type name as it appears in JSON (`"http_call"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeConfig::Transform(_) => "transform",
            NodeConfig::HttpCall(_) => "http_call",
            NodeConfig::Branch(_) => "branch",
            NodeConfig::Delay(_) => "delay",
            NodeConfig::Terminate(_) => "terminate",
        }
    }

    /// Pure nodes are evaluated inline by the orchestrator; `http_call` and
    /// `delay` are the asynchronous boundaries.
    pub fn is_pure(&self) -> bool {
        matches!(
            self,
            NodeConfig::Transform(_) | NodeConfig::Branch(_) | NodeConfig::Terminate(_)
        )
    }
}

/// `transform`: the output is the expression's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// JMESPath over the run context.
    pub expression: String,
}

/// `http_call`: one HTTP request, retried per `retry`. Strings in `url`,
/// `headers`, `query`, `body` and `idempotency_key` are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCallConfig {
    /// Request method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Target URL (template).
    pub url: String,
    /// Request headers (values are templates).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters (values are templates).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body; strings inside are templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Per-attempt timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Idempotency key (template); by default derived from the run id and
    /// node id, the same on every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Default per-attempt HTTP timeout: 30 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// HTTP methods an `http_call` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET (the default).
    #[default]
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
    /// OPTIONS.
    Options,
}

impl HttpMethod {
    /// All methods, in schema order.
    pub const ALL: [HttpMethod; 7] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Head,
        HttpMethod::Options,
    ];

    /// The method as sent on the wire (`"GET"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

/// Retry policy of an `http_call`: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff base: the cap of the first retry's delay.
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    /// Upper bound of any delay.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
    /// Statuses that are retried; `None` means 408, 429 and 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_status: Option<Vec<u16>>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_max_attempts(),
            base_ms: default_base_ms(),
            max_ms: default_max_ms(),
            retry_on_status: None,
        }
    }
}

fn default_max_attempts() -> u32 {
    5
}
fn default_base_ms() -> u64 {
    1_000
}
fn default_max_ms() -> u64 {
    300_000
}

/// `branch`: output `{"result": bool}` (JMESPath truthiness of the
/// condition); the run continues along the edge labelled accordingly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    /// JMESPath over the run context.
    pub condition: String,
}

/// `delay`: wait a fixed duration, or until the time an expression yields
/// (an RFC 3339 string or epoch milliseconds). Output: `{"until": <RFC 3339>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DelayConfig {
    /// Wait this long.
    Duration {
        /// Milliseconds to wait.
        duration_ms: u64,
    },
    /// Wait until this time.
    Until {
        /// JMESPath yielding an RFC 3339 timestamp or epoch milliseconds.
        until: String,
    },
}

/// `terminate`: end the run now with `status`, and `output` (a JMESPath
/// expression; `null` when absent) as the run's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateConfig {
    /// The run's final status.
    #[serde(default)]
    pub status: TerminateStatus,
    /// JMESPath over the run context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Final status chosen by a `terminate` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminateStatus {
    /// The run succeeded.
    #[default]
    Succeeded,
    /// The run failed.
    Failed,
}

/// Labels of a branch node's two edges.
pub const TRUE_LABEL: &str = "true";
/// See [`TRUE_LABEL`].
pub const FALSE_LABEL: &str = "false";

impl Definition {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The entry node: the first node without an incoming edge (a valid
    /// definition has exactly one).
    pub fn entry(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| !self.edges.iter().any(|e| e.to == n.id))
    }

    /// Edges leaving `id`.
    pub fn outgoing<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.from == id)
    }

    /// Edges entering `id`.
    pub fn incoming<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.to == id)
    }

    /// Targets of the edges leaving `id` with exactly this `label`
    /// (`None` for ordinary edges, `Some("true")` for a branch's true edge).
    pub fn successors<'a>(&'a self, id: &'a str, label: Option<&'a str>) -> Vec<&'a Node> {
        self.outgoing(id)
            .filter(|e| e.label.as_deref() == label)
            .filter_map(|e| self.node(&e.to))
            .collect()
    }

    /// Whether `id` has no outgoing edge (reaching it may end the run).
    pub fn is_leaf(&self, id: &str) -> bool {
        self.outgoing(id).next().is_none()
    }

    /// Nodes in a topological order, stable with respect to declaration
    /// order (Kahn's algorithm, smallest index first). Nodes on a cycle are
    /// left out; a valid definition has none.
    pub fn topological_order(&self) -> Vec<&Node> {
        let index: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let mut indegree = vec![0usize; self.nodes.len()];
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for e in &self.edges {
            if let (Some(&f), Some(&t)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
                indegree[t] += 1;
                succ[f].push(t);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> = (0..self.nodes.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(&self.nodes[i]);
            for &t in &succ[i] {
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    ready.insert(t);
                }
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::api_example;
    use serde_json::json;

    #[test]
    fn deserializes_the_api_example() {
        let def: Definition = serde_json::from_value(api_example()).unwrap();
        assert_eq!(def.nodes.len(), 6);
        let NodeConfig::HttpCall(call) = &def.node("call").unwrap().kind else {
            panic!("call is an http_call");
        };
        assert_eq!(call.method, HttpMethod::Post);
        assert_eq!(call.retry, RetryPolicy::default());
        assert_eq!(call.query, BTreeMap::new());
        assert!(matches!(
            def.node("wait").unwrap().kind,
            NodeConfig::Delay(DelayConfig::Duration { duration_ms: 60000 })
        ));
        assert_eq!(def.entry().unwrap().id, "pick");
        assert_eq!(def.successors("ok", Some("true"))[0].id, "done");
        assert_eq!(def.successors("pick", None)[0].id, "call");
        assert!(def.is_leaf("done"));
    }

    #[test]
    fn round_trips_through_json() {
        let def: Definition = serde_json::from_value(api_example()).unwrap();
        let json = serde_json::to_value(&def).unwrap();
        assert_eq!(json["nodes"][0]["type"], "transform");
        assert_eq!(
            json["nodes"][0]["config"]["expression"],
            api_example()["nodes"][0]["config"]["expression"]
        );
        assert_eq!(json["nodes"][1]["config"]["method"], "POST");
        assert_eq!(json["nodes"][5]["config"], json!({"duration_ms": 60000}));
        assert!(json["edges"][0].get("label").is_none());
        let back: Definition = serde_json::from_value(json).unwrap();
        assert_eq!(back, def);
    }

    #[test]
    fn defaults_apply() {
        let n: Node = serde_json::from_value(
            json!({"id": "c", "type": "http_call", "config": {"url": "https://x"}}),
        )
        .unwrap();
        let NodeConfig::HttpCall(c) = n.kind else {
            panic!()
        };
        assert_eq!(c.method, HttpMethod::Get);
        assert_eq!(c.timeout_ms, 30_000);
        assert_eq!(c.retry.max_attempts, 5);
        let n: Node =
            serde_json::from_value(json!({"id": "t", "type": "terminate", "config": {}})).unwrap();
        assert_eq!(
            n.kind,
            NodeConfig::Terminate(TerminateConfig {
                status: TerminateStatus::Succeeded,
                output: None
            })
        );
        let d: DelayConfig = serde_json::from_value(json!({"until": "trigger.body.at"})).unwrap();
        assert_eq!(
            d,
            DelayConfig::Until {
                until: "trigger.body.at".into()
            }
        );
    }

    #[test]
    fn topological_order_is_stable() {
        let def: Definition = serde_json::from_value(json!({
            "nodes": [
                {"id": "c", "type": "transform", "config": {"expression": "@"}},
                {"id": "a", "type": "transform", "config": {"expression": "@"}},
                {"id": "b", "type": "transform", "config": {"expression": "@"}}
            ],
            "edges": [{"from": "a", "to": "c"}, {"from": "a", "to": "b"}]
        }))
        .unwrap();
        let ids: Vec<_> = def
            .topological_order()
            .iter()
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(ids, vec!["a", "c", "b"]);
    }
}

//! The mapping preview: the run context a node would see, computed in the
//! browser with the engine's own expression code (the core crate in wasm).
//!
//! Transforms and branches upstream of the node are evaluated on the sample
//! payload; steps that need the outside world (`http_call`, `delay`) take
//! their output from the last test run when there is one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::state::Doc;

/// The context `{trigger, steps, run}` for node `id`: the outputs of the
/// nodes it depends on, as far as they can be known here.
pub fn context(doc: &Doc, id: &str, body: &Value, known: &BTreeMap<String, Value>) -> Value {
    let upstream = ancestors(doc, id);
    let trigger = json!({ "body": body, "headers": {}, "query": {} });
    let mut steps = Map::new();
    for node_id in doc.topological() {
        if !upstream.contains(&node_id) {
            continue;
        }
        let Some(node) = doc.node(&node_id) else {
            continue;
        };
        let ctx = json!({ "trigger": trigger, "steps": steps, "run": run() });
        let output = match node.kind.as_str() {
            "transform" => expression(&node.config, "expression")
                .and_then(|e| meshhook_core::expr::eval(e, &ctx).ok()),
            "branch" => expression(&node.config, "condition")
                .and_then(|e| meshhook_core::expr::eval(e, &ctx).ok())
                .map(|v| json!({ "result": meshhook_core::expr::is_truthy(&v) })),
            _ => known.get(&node_id).cloned(),
        };
        if let Some(output) = output {
            steps.insert(node_id, output);
        }
    }
    json!({ "trigger": trigger, "steps": steps, "run": run() })
}

/// What the test context says about the run itself.
fn run() -> Value {
    json!({ "id": "preview", "workflow_id": "preview", "version": null })
}

fn expression<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str)
}

/// Every node from which `id` can be reached.
fn ancestors(doc: &Doc, id: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![id.to_owned()];
    while let Some(at) = todo.pop() {
        for e in doc.edges.iter().filter(|e| e.to == at) {
            if seen.insert(e.from.clone()) {
                todo.push(e.from.clone());
            }
        }
    }
    seen
}

/// The value of `expression` over `ctx`, or the error in words.
pub fn evaluate(expression: &str, ctx: &Value) -> Result<Value, String> {
    meshhook_core::expr::eval(expression, ctx).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Doc {
        Doc::from_value(&json!({
            "nodes": [
                {"id": "pick", "type": "transform", "config": {"expression": "{n: length(trigger.body.items)}"}},
                {"id": "call", "type": "http_call", "config": {"url": "https://x"}},
                {"id": "big", "type": "branch", "config": {"condition": "steps.pick.n > `1`"}},
                {"id": "done", "type": "terminate", "config": {"output": "steps"}},
                {"id": "other", "type": "transform", "config": {"expression": "`1`"}}
            ],
            "edges": [
                {"from": "pick", "to": "call"}, {"from": "call", "to": "big"},
                {"from": "big", "to": "done", "label": "true"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn upstream_transforms_and_branches_are_evaluated_on_the_sample() {
        let known = BTreeMap::from([("call".to_owned(), json!({"status": 200}))]);
        let ctx = context(&doc(), "done", &json!({"items": [1, 2, 3]}), &known);
        assert_eq!(ctx["trigger"]["body"]["items"], json!([1, 2, 3]));
        assert_eq!(ctx["steps"]["pick"], json!({"n": 3}));
        assert_eq!(ctx["steps"]["call"], json!({"status": 200}));
        assert_eq!(ctx["steps"]["big"], json!({"result": true}));
        assert!(ctx["steps"].get("other").is_none(), "not upstream");
        assert!(ctx["steps"].get("done").is_none(), "not its own input");
        assert_eq!(evaluate("steps.pick.n", &ctx), Ok(json!(3)));
        assert!(evaluate("steps.[", &ctx).unwrap_err().contains("position"));
    }

    #[test]
    fn unknown_outside_steps_are_left_out() {
        let ctx = context(&doc(), "big", &json!({"items": []}), &BTreeMap::new());
        assert!(ctx["steps"].get("call").is_none());
        assert_eq!(ctx["steps"]["pick"], json!({"n": 0}));
    }
}

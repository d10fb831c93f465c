//! Shared test fixtures.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::definition::Definition;
use crate::event::{Event, Recorded};

/// The example definition from API.md (its `wait` node is an orphan).
pub fn api_example() -> Value {
    json!({
      "nodes": [
        {"id": "pick", "type": "transform", "config": {"expression": "{user: trigger.body.user, n: length(trigger.body.items)}"}, "position": {"x": 0, "y": 0}},
        {"id": "call", "type": "http_call", "config": {"method": "POST", "url": "https://api.example.com/users/{{ steps.pick.user.id }}",
          "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}, "body": {"count": "{{ steps.pick.n }}"},
          "timeout_ms": 30000, "retry": {"max_attempts": 5, "base_ms": 1000, "max_ms": 300000}}},
        {"id": "ok", "type": "branch", "config": {"condition": "steps.call.status == `200`"}},
        {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.call.body"}},
        {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{error: steps.call.body}"}},
        {"id": "wait", "type": "delay", "config": {"duration_ms": 60000}}
      ],
      "edges": [
        {"from": "pick", "to": "call"}, {"from": "call", "to": "ok"},
        {"from": "ok", "to": "done", "label": "true"}, {"from": "ok", "to": "fail", "label": "false"}
      ]
    })
}

/// Parses and validates a definition.
pub fn def(v: Value) -> Definition {
    match crate::validate::validate(&v) {
        Ok(d) => d,
        Err(issues) => panic!("invalid fixture: {issues:#?}"),
    }
}

/// `n` transforms in a row, each adding 1 to the previous output.
pub fn chain(n: usize) -> Definition {
    let nodes: Vec<Value> = (0..n)
        .map(|i| {
            let expression = if i == 0 {
                "trigger.body.start".to_owned()
            } else {
                format!("sum([steps.n{}, `1`])", i - 1)
            };
            json!({"id": format!("n{i}"), "type": "transform", "config": {"expression": expression}})
        })
        .collect();
    let edges: Vec<Value> = (1..n)
        .map(|i| json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}))
        .collect();
    def(json!({"nodes": nodes, "edges": edges}))
}

/// A fixed start time.
pub fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("valid timestamp")
}

/// `t0 + secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// A recorded event at `t0 + secs`.
pub fn rec(seq: i64, secs: i64, event: Event) -> Recorded {
    Recorded {
        seq,
        at: at(secs),
        event,
    }
}

/// The run id used by fixtures.
pub fn run_id() -> Uuid {
    Uuid::from_u128(0x1111)
}

/// `run_created` (seq 1, at t0) with trigger body `{"start": 1}`.
pub fn created(_def: &Definition) -> Recorded {
    created_with(
        json!({"body": {"start": 1}, "headers": {}, "query": {}}),
        None,
    )
}

/// `run_created` with a given trigger and timeout.
pub fn created_with(trigger: Value, timeout_ms: Option<u64>) -> Recorded {
    rec(
        1,
        0,
        Event::RunCreated {
            run_id: run_id(),
            workflow_id: Uuid::from_u128(0x2222),
            version: 1,
            trigger,
            timeout_ms,
            parent_run_id: None,
        },
    )
}

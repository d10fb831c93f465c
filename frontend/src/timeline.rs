//! A run's event log read for people: a timeline with offsets and
//! durations, each step's HTTP exchanges (request, response or failure per
//! attempt) and the input it saw. Pure, tested on the host.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::api::runs::Event;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub seq: i64,
    pub kind: String,
    pub node: Option<String>,
    pub attempt: Option<u64>,
    pub at: String,
    /// Milliseconds since the run's first event.
    pub offset_ms: Option<i64>,
    /// How long what this event ends took: a step (since it started), an
    /// HTTP attempt (the response time, or since it was sent), a delay.
    pub duration_ms: Option<i64>,
    pub data: Value,
}

fn time(at: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(at).ok()
}

fn node_of(e: &Event) -> Option<&str> {
    e.data.get("node_id").and_then(Value::as_str)
}

fn attempt_of(e: &Event) -> Option<u64> {
    e.data.get("attempt").and_then(Value::as_u64)
}

/// The most recent earlier event of `kind` for the same node (and attempt,
/// when given).
fn since<'a>(
    events: &'a [Event],
    upto: usize,
    kind: &str,
    node: &str,
    attempt: Option<u64>,
) -> Option<&'a Event> {
    events[..upto].iter().rev().find(|e| {
        e.kind == kind
            && node_of(e) == Some(node)
            && (attempt.is_none() || attempt_of(e) == attempt)
    })
}

fn between(a: &Event, b: &Event) -> Option<i64> {
    Some((time(&b.at)? - time(&a.at)?).num_milliseconds())
}

/// The timeline of `events` (in log order).
pub fn rows(events: &[Event]) -> Vec<Row> {
    let start = events.first().and_then(|e| time(&e.at));
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let node = node_of(e).map(str::to_owned);
            let attempt = attempt_of(e);
            let duration_ms = node.as_deref().and_then(|n| match e.kind.as_str() {
                "step_succeeded" | "step_failed" => {
                    since(events, i, "step_started", n, None).and_then(|s| between(s, e))
                }
                "http_responded" => e.data.get("duration_ms").and_then(Value::as_i64),
                "http_attempt_failed" => {
                    since(events, i, "http_requested", n, attempt).and_then(|s| between(s, e))
                }
                "delay_elapsed" => {
                    since(events, i, "delay_scheduled", n, None).and_then(|s| between(s, e))
                }
                _ => None,
            });
            Row {
                seq: e.seq,
                kind: e.kind.clone(),
                node,
                attempt,
                at: e.at.clone(),
                offset_ms: start
                    .zip(time(&e.at))
                    .map(|(s, t)| (t - s).num_milliseconds()),
                duration_ms,
                data: e.data.clone(),
            }
        })
        .collect()
}

/// One HTTP attempt of a step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    pub attempt: u64,
    /// The request as recorded (secrets symbolic, PII redacted).
    pub request: Option<Value>,
    /// `{status, headers, body, duration_ms}` when it answered.
    pub response: Option<Value>,
    /// `{error, kind, status?, retry?}` when the attempt failed.
    pub failure: Option<Value>,
}

/// What step `node`'s expressions saw when it started (the engine's run
/// context then): `{trigger, steps: {<id>: output}, run: {id, workflow_id,
/// version}}` with the outputs of the steps that had succeeded before its
/// `step_started` event. `None` if it never started.
pub fn input_of(events: &[Event], node: &str, trigger: &Value, run: Value) -> Option<Value> {
    let mut steps = serde_json::Map::new();
    for e in events {
        match e.kind.as_str() {
            "step_started" if node_of(e) == Some(node) => {
                return Some(serde_json::json!({
                    "trigger": trigger,
                    "steps": steps,
                    "run": run,
                }));
            }
            "step_succeeded" => {
                if let (Some(id), Some(output)) = (node_of(e), e.data.get("output")) {
                    steps.insert(id.to_owned(), output.clone());
                }
            }
            _ => {}
        }
    }
    None
}

/// The HTTP attempts of step `node`, in order.
pub fn exchanges(events: &[Event], node: &str) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for e in events.iter().filter(|e| node_of(e) == Some(node)) {
        let Some(attempt) = attempt_of(e) else {
            continue;
        };
        let slot = match out.iter().position(|x| x.attempt == attempt) {
            Some(i) => i,
            None => {
                out.push(Exchange {
                    attempt,
                    ..Exchange::default()
                });
                out.len() - 1
            }
        };
        let data = without_node(&e.data);
        match e.kind.as_str() {
            "http_requested" => {
                out[slot].request = Some(data.get("request").cloned().unwrap_or(data))
            }
            "http_responded" => out[slot].response = Some(data),
            "http_attempt_failed" => out[slot].failure = Some(data),
            _ => {}
        }
    }
    out.retain(|x| x.request.is_some() || x.response.is_some() || x.failure.is_some());
    out
}

fn without_node(data: &Value) -> Value {
    let mut data = data.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.remove("node_id");
        obj.remove("attempt");
    }
    data
}

/// `1.2 s`, `340 ms`, `2 min 5 s`.
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        #[allow(clippy::cast_precision_loss)]
        let s = ms as f64 / 1000.0;
        format!("{s:.1} s")
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(seq: i64, kind: &str, at: &str, data: Value) -> Event {
        Event {
            seq,
            kind: kind.into(),
            data,
            at: at.into(),
        }
    }

    fn log() -> Vec<Event> {
        vec![
            ev(1, "run_created", "2026-01-01T00:00:00Z", json!({})),
            ev(
                2,
                "step_started",
                "2026-01-01T00:00:00.100Z",
                json!({"node_id": "call"}),
            ),
            ev(
                3,
                "http_requested",
                "2026-01-01T00:00:00.100Z",
                json!({"node_id": "call", "attempt": 1, "request": {"method": "GET", "url": "https://x"}}),
            ),
            ev(
                4,
                "http_attempt_failed",
                "2026-01-01T00:00:00.400Z",
                json!({"node_id": "call", "attempt": 1, "error": "timeout", "kind": "timeout"}),
            ),
            ev(
                5,
                "http_requested",
                "2026-01-01T00:00:01.400Z",
                json!({"node_id": "call", "attempt": 2, "request": {"method": "GET", "url": "https://x"}}),
            ),
            ev(
                6,
                "http_responded",
                "2026-01-01T00:00:01.600Z",
                json!({"node_id": "call", "attempt": 2, "status": 200, "body": {"ok": true}, "duration_ms": 180}),
            ),
            ev(
                7,
                "step_succeeded",
                "2026-01-01T00:00:01.650Z",
                json!({"node_id": "call", "output": {}}),
            ),
            ev(8, "run_succeeded", "2026-01-01T00:00:01.700Z", json!({})),
        ]
    }

    #[test]
    fn offsets_and_durations() {
        let r = rows(&log());
        assert_eq!(r.len(), 8);
        assert_eq!(r[0].offset_ms, Some(0));
        assert_eq!(r[7].offset_ms, Some(1700));
        assert_eq!(
            r[3].duration_ms,
            Some(300),
            "failed attempt: since it was sent"
        );
        assert_eq!(r[3].attempt, Some(1));
        assert_eq!(r[5].duration_ms, Some(180), "response time as recorded");
        assert_eq!(r[6].duration_ms, Some(1550), "step: since it started");
        assert_eq!(r[6].node.as_deref(), Some("call"));
        assert_eq!(r[0].duration_ms, None);
    }

    #[test]
    fn exchanges_pair_requests_with_outcomes() {
        let x = exchanges(&log(), "call");
        assert_eq!(x.len(), 2);
        assert_eq!(x[0].attempt, 1);
        assert_eq!(
            x[0].request,
            Some(json!({"method": "GET", "url": "https://x"}))
        );
        assert_eq!(
            x[0].failure,
            Some(json!({"error": "timeout", "kind": "timeout"}))
        );
        assert_eq!(x[0].response, None);
        assert_eq!(
            x[1].response.as_ref().map(|r| r["status"].clone()),
            Some(json!(200))
        );
        assert!(exchanges(&log(), "other").is_empty());
    }

    #[test]
    fn a_step_input_has_the_outputs_of_the_steps_before_it() {
        let log = [
            ev(1, "run_created", "2026-11-27T10:00:00Z", json!({})),
            ev(
                2,
                "step_started",
                "2026-11-27T10:00:00Z",
                json!({"node_id": "a"}),
            ),
            ev(
                3,
                "step_succeeded",
                "2026-11-27T10:00:00Z",
                json!({"node_id": "a", "output": {"n": 1}}),
            ),
            ev(
                4,
                "step_started",
                "2026-11-27T10:00:00Z",
                json!({"node_id": "b"}),
            ),
            ev(
                5,
                "step_succeeded",
                "2026-11-27T10:00:00Z",
                json!({"node_id": "b", "output": 2}),
            ),
        ];
        let run = json!({"id": "r"});
        let a = input_of(&log, "a", &json!({"body": 1}), run.clone()).unwrap();
        assert_eq!(a["steps"], json!({}));
        assert_eq!(a["trigger"], json!({"body": 1}));
        let b = input_of(&log, "b", &json!({"body": 1}), run.clone()).unwrap();
        assert_eq!(b["steps"], json!({"a": {"n": 1}}));
        assert_eq!(b["run"], run);
        assert!(input_of(&log, "c", &json!(null), json!(null)).is_none());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(340), "340 ms");
        assert_eq!(duration(1234), "1.2 s");
        assert_eq!(duration(125_000), "2 min 5 s");
    }
}

//! The run event log: the single source of truth of a run.
//!
//! Each event is a fact. Every non-deterministic input — wall-clock time
//! (the `at` of each [`Recorded`], delay deadlines), random jitter (the
//! retry delay in [`Event::HttpAttemptFailed`]) and HTTP responses — enters
//! the log as an event, so folding a log always reaches the same state.
//! Secrets never appear in events: requests are stored rendered but with
//! `{{ secrets.NAME }}` still symbolic.
//!
//! JSON shape: `{"type": "step_succeeded", "node_id": "...", "output": ...}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::definition::HttpMethod;

/// One fact about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run exists. Always the first event.
    RunCreated {
        /// This run's id.
        run_id: Uuid,
        /// The workflow it runs.
        workflow_id: Uuid,
        /// The published version it runs (runs never change version).
        version: i32,
        /// `{body, headers, query}` of the triggering request.
        trigger: Value,
        /// Run-level deadline, counted from this event's time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// The run this one resumes, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_run_id: Option<Uuid>,
    },
    /// A step began.
    StepStarted {
        /// The node.
        node_id: String,
    },
    /// A step was skipped: every edge into it lies on a path not taken.
    StepSkipped {
        /// The node.
        node_id: String,
    },
    /// A step finished with an output.
    StepSucceeded {
        /// The node.
        node_id: String,
        /// Visible to later expressions as `steps.<node_id>`.
        output: Value,
    },
    /// A step failed (the run fails with it).
    StepFailed {
        /// The node.
        node_id: String,
        /// Why.
        error: String,
    },
    /// An HTTP attempt was scheduled (with the request as it will be sent,
    /// secrets still symbolic).
    HttpRequested {
        /// The node.
        node_id: String,
        /// 1-based attempt number.
        attempt: u32,
        /// The rendered request.
        request: HttpRequest,
        /// Sent as `Idempotency-Key`; the same on every attempt.
        idempotency_key: String,
    },
    /// An HTTP attempt got a response that ends the step (any status not
    /// retried).
    HttpResponded {
        /// The node.
        node_id: String,
        /// The attempt it answers.
        attempt: u32,
        /// HTTP status.
        status: u16,
        /// Response headers (lower-case names).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Parsed JSON when the body is JSON, else a string (or null).
        #[serde(default)]
        body: Value,
        /// Time to the full response.
        duration_ms: u64,
        /// Whether the body was cut at the size limit.
        #[serde(default)]
        truncated: bool,
    },
    /// An HTTP attempt failed; `retry` says when the next one goes out, or
    /// is `None` when the step fails (not retryable, or attempts exhausted).
    HttpAttemptFailed {
        /// The node.
        node_id: String,
        /// The attempt that failed.
        attempt: u32,
        /// Why, for a human.
        error: String,
        /// What kind of failure.
        kind: HttpErrorKind,
        /// The status, when a retryable status caused the failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The next attempt, as chosen (with jitter) by the executor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<RetryDecision>,
    },
    /// A delay step waits until `until`.
    DelayScheduled {
        /// The node.
        node_id: String,
        /// When it ends.
        until: DateTime<Utc>,
    },
    /// A delay step's time has come.
    TimerFired {
        /// The node.
        node_id: String,
    },
    /// The run succeeded.
    RunSucceeded {
        /// The run's output.
        output: Value,
    },
    /// The run failed.
    RunFailed {
        /// Why.
        error: String,
        /// The step that failed it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_id: Option<String>,
        /// The output of a `terminate` node with status `failed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    /// Someone asked to cancel the run.
    CancelRequested {
        /// Why, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The run was cancelled.
    RunCancelled,
    /// The run passed its deadline (it counts as failed).
    RunTimedOut,
}

impl Event {
    /// The `type` tag as it appears in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunCreated { .. } => "run_created",
            Event::StepStarted { .. } => "step_started",
            Event::StepSkipped { .. } => "step_skipped",
            Event::StepSucceeded { .. } => "step_succeeded",
            Event::StepFailed { .. } => "step_failed",
            Event::HttpRequested { .. } => "http_requested",
            Event::HttpResponded { .. } => "http_responded",
            Event::HttpAttemptFailed { .. } => "http_attempt_failed",
            Event::DelayScheduled { .. } => "delay_scheduled",
            Event::TimerFired { .. } => "timer_fired",
            Event::RunSucceeded { .. } => "run_succeeded",
            Event::RunFailed { .. } => "run_failed",
            Event::CancelRequested { .. } => "cancel_requested",
            Event::RunCancelled => "run_cancelled",
            Event::RunTimedOut => "run_timed_out",
        }
    }

    /// The node the event is about, if any.
    pub fn node_id(&self) -> Option<&str> {
        match self {
            Event::StepStarted { node_id }
            | Event::StepSkipped { node_id }
            | Event::StepSucceeded { node_id, .. }
            | Event::StepFailed { node_id, .. }
            | Event::HttpRequested { node_id, .. }
            | Event::HttpResponded { node_id, .. }
            | Event::HttpAttemptFailed { node_id, .. }
            | Event::DelayScheduled { node_id, .. }
            | Event::TimerFired { node_id } => Some(node_id),
            Event::RunFailed { node_id, .. } => node_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the event ends the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::RunSucceeded { .. }
                | Event::RunFailed { .. }
                | Event::RunCancelled
                | Event::RunTimedOut
        )
    }

    /// Facts recorded by the HTTP executor (all other events but
    /// `RunCreated` and `CancelRequested` come from `decide`).
    pub fn is_http_result(&self) -> bool {
        matches!(
            self,
            Event::HttpResponded { .. } | Event::HttpAttemptFailed { .. }
        )
    }
}

/// An event as stored: its gapless per-run sequence number and the time it
/// was appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// 1-based, gapless, per run.
    pub seq: i64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// The fact.
    pub event: Event,
}

/// An HTTP request, rendered from an `http_call` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Method.
    pub method: HttpMethod,
    /// Absolute URL, without the `query` parameters below.
    pub url: String,
    /// Headers (may hold `{{ secrets.NAME }}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters to append to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
}

/// The kinds of failed HTTP attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpErrorKind {
    /// No response within the timeout.
    Timeout,
    /// DNS, TCP or TLS failure.
    Connect,
    /// A response with a retryable status.
    Status,
    /// The target's circuit breaker is open.
    CircuitOpen,
    /// The target resolves to a forbidden address.
    Ssrf,
    /// A referenced secret does not exist.
    Secret,
    /// The rendered request is unusable (bad URL, bad header).
    InvalidRequest,
    /// Anything else.
    Other,
}

impl HttpErrorKind {
    /// Whether this kind of failure is worth another attempt (for `Status`,
    /// the policy's status list decides; see
    /// [`crate::backoff::is_retryable_status`]).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            HttpErrorKind::Timeout
                | HttpErrorKind::Connect
                | HttpErrorKind::Status
                | HttpErrorKind::CircuitOpen
        )
    }
}

/// When the next attempt goes out, as chosen by the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDecision {
    /// The jittered delay.
    pub delay_ms: u64,
    /// The time the next attempt may start.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_shape_is_tagged_and_snake_case() {
        let e = Event::StepSucceeded {
            node_id: "a".into(),
            output: json!(1),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"type": "step_succeeded", "node_id": "a", "output": 1})
        );
        assert_eq!(
            serde_json::to_value(Event::RunCancelled).unwrap(),
            json!({"type": "run_cancelled"})
        );
        let e: Event = serde_json::from_value(json!({
            "type": "http_attempt_failed", "node_id": "c", "attempt": 1, "error": "boom", "kind": "circuit_open"
        }))
        .unwrap();
        assert_eq!(e.type_name(), "http_attempt_failed");
        assert_eq!(e.node_id(), Some("c"));
        assert!(e.is_http_result());
    }

    #[test]
    fn type_names_match_serde() {
        let events = vec![
            Event::RunCreated {
                run_id: Uuid::nil(),
                workflow_id: Uuid::nil(),
                version: 1,
                trigger: json!({}),
                timeout_ms: None,
                parent_run_id: None,
            },
            Event::StepStarted {
                node_id: "a".into(),
            },
            Event::StepSkipped {
                node_id: "a".into(),
            },
            Event::StepFailed {
                node_id: "a".into(),
                error: "x".into(),
            },
            Event::TimerFired {
                node_id: "a".into(),
            },
            Event::RunSucceeded {
                output: json!(null),
            },
            Event::RunFailed {
                error: "x".into(),
                node_id: None,
                output: None,
            },
            Event::CancelRequested { reason: None },
            Event::RunCancelled,
            Event::RunTimedOut,
        ];
        for e in events {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.type_name());
            let back: Event = serde_json::from_value(v).unwrap();
            assert_eq!(back, e);
        }
    }
}

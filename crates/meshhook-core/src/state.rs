//! Run state: a pure, deterministic fold of a run's event log.
//!
//! `fold(definition, log)` rebuilds everything there is to know about a run
//! (its status, each step's status, attempts, times and output, the run
//! context expressions see, what is in flight) from the recorded events
//! alone. It rejects logs that break the state machine's rules, which is
//! how replay detects corruption or a non-deterministic writer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::definition::{Definition, NodeConfig};
use crate::event::{Event, HttpErrorKind, HttpRequest, Recorded, RetryDecision};

/// Run status, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created; no step has started yet.
    Queued,
    /// Steps are executing.
    Running,
    /// Every active step waits on a timer or a retry backoff.
    Waiting,
    /// Ended well.
    Succeeded,
    /// Ended badly (a failed step, a `terminate` with `failed`, a timeout).
    Failed,
    /// Cancelled on request.
    Cancelled,
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// The status as stored and shown (`"running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Step status, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not reached yet.
    Pending,
    /// Started and not finished.
    Running,
    /// An HTTP attempt failed and another one is scheduled.
    Retrying,
    /// Finished with an output.
    Succeeded,
    /// Failed.
    Failed,
    /// On a path not taken.
    Skipped,
}

impl StepStatus {
    /// Whether the step is finished (succeeded, failed or skipped).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped
        )
    }

    /// The status as stored and shown (`"retrying"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Retrying => "retrying",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    /// Whether the step is in progress (running or retrying).
    pub fn is_active(self) -> bool {
        matches!(self, StepStatus::Running | StepStatus::Retrying)
    }
}

/// What an active step is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    /// The result of this HTTP attempt.
    Http {
        /// The attempt in flight.
        attempt: u32,
    },
    /// A delay's deadline.
    Timer {
        /// When it ends.
        until: DateTime<Utc>,
    },
}

/// The last failed HTTP attempt of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFailure {
    /// Which attempt.
    pub attempt: u32,
    /// Why.
    pub error: String,
    /// What kind of failure.
    pub kind: HttpErrorKind,
    /// The status, for status failures.
    pub status: Option<u16>,
    /// The scheduled retry, if any.
    pub retry: Option<RetryDecision>,
}

/// Everything known about one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Status.
    pub status: StepStatus,
    /// HTTP attempts made so far.
    pub attempts: u32,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its output, once succeeded (`Some(null)` is a real `null` output).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<Value>,
    /// Its error, once failed.
    pub error: Option<String>,
    /// What it waits for, while active.
    pub wait: Option<Wait>,
    /// The last rendered HTTP request (secrets symbolic).
    pub request: Option<HttpRequest>,
    /// The HTTP idempotency key.
    pub idempotency_key: Option<String>,
    /// The response that will become the output (`{status, headers, body}`).
    pub response: Option<Value>,
    /// The last failed attempt.
    pub last_failure: Option<AttemptFailure>,
    /// Whether a delay's timer has fired.
    pub timer_fired: bool,
}

impl StepState {
    fn pending() -> Self {
        StepState {
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            output: None,
            error: None,
            wait: None,
            request: None,
            idempotency_key: None,
            response: None,
            last_failure: None,
            timer_fired: false,
        }
    }
}

/// Everything known about a run, folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The run.
    pub run_id: Uuid,
    /// Its workflow.
    pub workflow_id: Uuid,
    /// The workflow version it runs.
    pub version: i32,
    /// The run it resumes, if any.
    pub parent_run_id: Option<Uuid>,
    /// `{body, headers, query}`.
    pub trigger: Value,
    /// Run-level timeout.
    pub timeout_ms: Option<u64>,
    /// Status.
    pub status: RunStatus,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Time of the last event.
    pub updated_at: DateTime<Utc>,
    /// Per node, in node-id order.
    pub steps: BTreeMap<String, StepState>,
    /// The run's output, once ended (a failed `terminate` sets it too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The step that failed it.
    pub failed_node: Option<String>,
    /// The node of the most recent step event (the "last step" of the
    /// dead-letter view).
    pub last_node: Option<String>,
    /// The most recently succeeded node without outgoing edges; its output
    /// becomes the run's output.
    pub last_leaf: Option<String>,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
    /// Sequence number of the last event folded.
    pub last_seq: i64,
}

/// A log that breaks the state machine's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// There are no events.
    #[error("the event log is empty")]
    Empty,
    /// The first event is not `run_created`.
    #[error("event {seq} is `{event}`, but a log starts with `run_created`")]
    NotCreated {
        /// Its sequence number.
        seq: i64,
        /// Its type.
        event: &'static str,
    },
    /// A second `run_created`.
    #[error("event {seq} is a second `run_created`")]
    AlreadyCreated {
        /// Its sequence number.
        seq: i64,
    },
    /// Sequence numbers are not gapless and increasing.
    #[error("expected event {expected}, found {found}")]
    Sequence {
        /// The number that should follow.
        expected: i64,
        /// The number found.
        found: i64,
    },
    /// An event names a node the definition does not have.
    #[error("event {seq} refers to unknown node `{node_id}`")]
    UnknownNode {
        /// Its sequence number.
        seq: i64,
        /// The node.
        node_id: String,
    },
    /// An event that cannot happen in the current state.
    #[error("event {seq} (`{event}`) is not allowed: {reason}")]
    Transition {
        /// Its sequence number.
        seq: i64,
        /// Its type.
        event: &'static str,
        /// Why.
        reason: String,
    },
}

/// Folds a run's whole log. Pure and deterministic.
pub fn fold(definition: &Definition, events: &[Recorded]) -> Result<RunState, FoldError> {
    let (first, rest) = events.split_first().ok_or(FoldError::Empty)?;
    let mut state = RunState::new(definition, first)?;
    for recorded in rest {
        state.apply(definition, recorded)?;
    }
    Ok(state)
}

impl RunState {
    /// The state right after `run_created`.
    pub fn new(definition: &Definition, first: &Recorded) -> Result<Self, FoldError> {
        let Event::RunCreated {
            run_id,
            workflow_id,
            version,
            trigger,
            timeout_ms,
            parent_run_id,
        } = &first.event
        else {
            return Err(FoldError::NotCreated {
                seq: first.seq,
                event: first.event.type_name(),
            });
        };
        Ok(RunState {
            run_id: *run_id,
            workflow_id: *workflow_id,
            version: *version,
            parent_run_id: *parent_run_id,
            trigger: trigger.clone(),
            timeout_ms: *timeout_ms,
            status: RunStatus::Queued,
            created_at: first.at,
            finished_at: None,
            updated_at: first.at,
            steps: definition
                .nodes
                .iter()
                .map(|n| (n.id.clone(), StepState::pending()))
                .collect(),
            output: None,
            error: None,
            failed_node: None,
            last_node: None,
            last_leaf: None,
            cancel_requested: false,
            last_seq: first.seq,
        })
    }

    /// Whether the run has ended.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    /// The run-level deadline, if a timeout is set.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.timeout_ms.map(|ms| self.created_at + millis(ms))
    }

    /// One step.
    pub fn step(&self, node_id: &str) -> Option<&StepState> {
        self.steps.get(node_id)
    }

    /// The active frontier: steps running or retrying.
    pub fn frontier(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|(_, s)| s.status.is_active())
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Whether the executor may record a result for this attempt: the run
    /// has not ended and the attempt is the one in flight. Check this (in
    /// the appending transaction) so a redelivered job records nothing twice.
    pub fn accepts_http_result(&self, node_id: &str, attempt: u32) -> bool {
        !self.is_terminal()
            && self
                .steps
                .get(node_id)
                .is_some_and(|s| s.wait == Some(Wait::Http { attempt }))
    }

    /// The run context expressions see:
    /// `{trigger, steps: {<id>: output}, run: {id, workflow_id, version}}`.
    /// Only succeeded steps appear under `steps`.
    pub fn context(&self) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .steps
            .iter()
            .filter_map(|(id, s)| s.output.as_ref().map(|o| (id.clone(), o.clone())))
            .collect();
        json!({
            "trigger": self.trigger,
            "steps": steps,
            "run": {
                "id": self.run_id,
                "workflow_id": self.workflow_id,
                "version": self.version,
            }
        })
    }

    /// Folds one more event.
    pub fn apply(&mut self, definition: &Definition, recorded: &Recorded) -> Result<(), FoldError> {
        let seq = recorded.seq;
        if seq != self.last_seq + 1 {
            return Err(FoldError::Sequence {
                expected: self.last_seq + 1,
                found: seq,
            });
        }
        let at = recorded.at;
        let event = &recorded.event;
        let name = event.type_name();
        let bad = |reason: String| FoldError::Transition {
            seq,
            event: name,
            reason,
        };

        if self.is_terminal() {
            // Late facts from the executor and late cancel requests are
            // recorded; nothing else may follow the end of a run.
            if !event.is_http_result() && !matches!(event, Event::CancelRequested { .. }) {
                return Err(bad(format!("the run already {}", self.status.as_str())));
            }
        }

        if let Some(node_id) = event.node_id()
            && !matches!(event, Event::RunFailed { .. })
        {
            let node = definition
                .node(node_id)
                .ok_or_else(|| FoldError::UnknownNode {
                    seq,
                    node_id: node_id.to_owned(),
                })?;
            let is_leaf = definition.is_leaf(node_id);
            let step = self
                .steps
                .get_mut(node_id)
                .ok_or_else(|| FoldError::UnknownNode {
                    seq,
                    node_id: node_id.to_owned(),
                })?;
            apply_step(step, &node.kind, event, at).map_err(bad)?;
            if matches!(event, Event::StepSucceeded { .. }) && is_leaf {
                self.last_leaf = Some(node_id.to_owned());
            }
            if !event.is_http_result() || !self.is_terminal() {
                self.last_node = Some(node_id.to_owned());
            }
        } else {
            match event {
                Event::RunCreated { .. } => return Err(FoldError::AlreadyCreated { seq }),
                Event::CancelRequested { .. } => {
                    if !self.is_terminal() {
                        self.cancel_requested = true;
                    }
                }
                Event::RunSucceeded { output } => {
                    self.finish(RunStatus::Succeeded, at);
                    self.output = Some(output.clone());
                }
                Event::RunFailed {
                    error,
                    node_id,
                    output,
                } => {
                    if let Some(id) = node_id
                        && !self.steps.contains_key(id)
                    {
                        return Err(FoldError::UnknownNode {
                            seq,
                            node_id: id.clone(),
                        });
                    }
                    self.finish(RunStatus::Failed, at);
                    self.error = Some(error.clone());
                    self.failed_node = node_id.clone();
                    self.output = output.clone();
                }
                Event::RunCancelled => {
                    self.finish(RunStatus::Cancelled, at);
                    self.error = Some("cancelled".to_owned());
                }
                Event::RunTimedOut => {
                    self.finish(RunStatus::Failed, at);
                    self.error = Some(format!(
                        "timed out after {} ms",
                        self.timeout_ms.unwrap_or_default()
                    ));
                }
                // Step events carry a node id and were handled above.
                _ => return Err(bad("the event has no node".to_owned())),
            }
        }
        self.last_seq = seq;
        self.updated_at = at;
        self.refresh_status();
        Ok(())
    }

    fn finish(&mut self, status: RunStatus, at: DateTime<Utc>) {
        self.status = status;
        self.finished_at = Some(at);
    }

    fn refresh_status(&mut self) {
        if self.is_terminal() {
            return;
        }
        let started = self.steps.values().any(|s| s.status != StepStatus::Pending);
        if !started {
            self.status = RunStatus::Queued;
            return;
        }
        let mut active = self
            .steps
            .values()
            .filter(|s| s.status.is_active())
            .peekable();
        let waiting = active.peek().is_some()
            && active.all(|s| {
                s.status == StepStatus::Retrying || matches!(s.wait, Some(Wait::Timer { .. }))
            });
        self.status = if waiting {
            RunStatus::Waiting
        } else {
            RunStatus::Running
        };
    }
}

/// Applies a step event to its step; `Err` says why it is not allowed.
fn apply_step(
    step: &mut StepState,
    kind: &NodeConfig,
    event: &Event,
    at: DateTime<Utc>,
) -> Result<(), String> {
    let status = step.status;
    let require_active = || {
        if status.is_active() {
            Ok(())
        } else {
            Err(format!("the step is {status:?}, not running"))
        }
    };
    match event {
        Event::StepStarted { .. } | Event::StepSkipped { .. } => {
            if status != StepStatus::Pending {
                return Err(format!("the step is {status:?}, not pending"));
            }
            if matches!(event, Event::StepStarted { .. }) {
                step.status = StepStatus::Running;
                step.started_at = Some(at);
            } else {
                step.status = StepStatus::Skipped;
                step.finished_at = Some(at);
            }
        }
        Event::StepSucceeded { output, .. } => {
            require_active()?;
            step.status = StepStatus::Succeeded;
            step.output = Some(output.clone());
            step.wait = None;
            step.finished_at = Some(at);
        }
        Event::StepFailed { error, .. } => {
            require_active()?;
            step.status = StepStatus::Failed;
            step.error = Some(error.clone());
            step.wait = None;
            step.finished_at = Some(at);
        }
        Event::HttpRequested {
            attempt,
            request,
            idempotency_key,
            ..
        } => {
            require_active()?;
            if !matches!(kind, NodeConfig::HttpCall(_)) {
                return Err("the node is not an http_call".to_owned());
            }
            if step.wait.is_some() || step.response.is_some() {
                return Err("an attempt is already in flight or answered".to_owned());
            }
            if *attempt != step.attempts + 1 {
                return Err(format!(
                    "attempt {attempt} does not follow attempt {}",
                    step.attempts
                ));
            }
            step.attempts = *attempt;
            step.wait = Some(Wait::Http { attempt: *attempt });
            step.request = Some(request.clone());
            step.idempotency_key = Some(idempotency_key.clone());
        }
        Event::HttpResponded {
            attempt,
            status: http_status,
            headers,
            body,
            ..
        } => {
            if step.wait != Some(Wait::Http { attempt: *attempt }) {
                return Err(format!("attempt {attempt} is not in flight"));
            }
            step.wait = None;
            step.response = Some(json!({"status": http_status, "headers": headers, "body": body}));
        }
        Event::HttpAttemptFailed {
            attempt,
            error,
            kind: error_kind,
            status: http_status,
            retry,
            ..
        } => {
            if step.wait != Some(Wait::Http { attempt: *attempt }) {
                return Err(format!("attempt {attempt} is not in flight"));
            }
            step.wait = None;
            step.last_failure = Some(AttemptFailure {
                attempt: *attempt,
                error: error.clone(),
                kind: *error_kind,
                status: *http_status,
                retry: *retry,
            });
            if retry.is_some() && status.is_active() {
                step.status = StepStatus::Retrying;
            }
        }
        Event::DelayScheduled { until, .. } => {
            require_active()?;
            if !matches!(kind, NodeConfig::Delay(_)) {
                return Err("the node is not a delay".to_owned());
            }
            if step.wait.is_some() || step.timer_fired {
                return Err("the delay is already scheduled".to_owned());
            }
            step.wait = Some(Wait::Timer { until: *until });
        }
        Event::TimerFired { .. } => {
            require_active()?;
            if !matches!(step.wait, Some(Wait::Timer { .. })) {
                return Err("no timer is scheduled".to_owned());
            }
            step.wait = None;
            step.timer_fired = true;
        }
        _ => return Err("not a step event".to_owned()),
    }
    Ok(())
}

/// Reads a present field as `Some`, even when it is `null` (an absent one
/// defaults to `None`), so `Some(Value::Null)` survives a JSON round trip.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Milliseconds as a chrono duration (saturating).
pub(crate) fn millis(ms: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{chain, created, rec, t0};

    #[test]
    fn empty_and_headless_logs_are_rejected() {
        let def = chain(2);
        assert_eq!(fold(&def, &[]), Err(FoldError::Empty));
        let log = vec![rec(1, 0, Event::RunCancelled)];
        assert!(matches!(
            fold(&def, &log),
            Err(FoldError::NotCreated { .. })
        ));
    }

    #[test]
    fn folds_a_simple_run() {
        let def = chain(2);
        let log = vec![
            created(&def),
            rec(
                2,
                1,
                Event::StepStarted {
                    node_id: "n0".into(),
                },
            ),
            rec(
                3,
                1,
                Event::StepSucceeded {
                    node_id: "n0".into(),
                    output: serde_json::json!(1),
                },
            ),
        ];
        let s = fold(&def, &log).unwrap();
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.steps["n0"].status, StepStatus::Succeeded);
        assert_eq!(s.steps["n1"].status, StepStatus::Pending);
        assert_eq!(s.context()["steps"], serde_json::json!({"n0": 1}));
        assert_eq!(s.context()["run"]["version"], 1);
        assert_eq!(s.last_seq, 3);
        assert_eq!(
            s.steps["n0"].started_at,
            Some(t0() + chrono::Duration::seconds(1))
        );
        assert_eq!(fold(&def, &log[..1]).unwrap().status, RunStatus::Queued);
    }

    #[test]
    fn rejects_gaps_unknown_nodes_and_bad_transitions() {
        let def = chain(2);
        let mut log = vec![
            created(&def),
            rec(
                3,
                1,
                Event::StepStarted {
                    node_id: "n0".into(),
                },
            ),
        ];
        assert_eq!(
            fold(&def, &log),
            Err(FoldError::Sequence {
                expected: 2,
                found: 3
            })
        );
        log[1] = rec(
            2,
            1,
            Event::StepStarted {
                node_id: "zz".into(),
            },
        );
        assert!(matches!(
            fold(&def, &log),
            Err(FoldError::UnknownNode { .. })
        ));
        log[1] = rec(
            2,
            1,
            Event::StepSucceeded {
                node_id: "n0".into(),
                output: serde_json::json!(1),
            },
        );
        assert!(matches!(
            fold(&def, &log),
            Err(FoldError::Transition { .. })
        ));
        log[1] = created(&def);
        log[1].seq = 2;
        assert_eq!(fold(&def, &log), Err(FoldError::AlreadyCreated { seq: 2 }));
    }

    #[test]
    fn nothing_but_late_facts_after_the_end() {
        let def = chain(1);
        let log = vec![
            created(&def),
            rec(2, 1, Event::CancelRequested { reason: None }),
            rec(3, 1, Event::RunCancelled),
            rec(4, 1, Event::CancelRequested { reason: None }),
        ];
        let s = fold(&def, &log).unwrap();
        assert_eq!(s.status, RunStatus::Cancelled);
        let mut log = log;
        log.push(rec(
            5,
            2,
            Event::StepStarted {
                node_id: "n0".into(),
            },
        ));
        assert!(matches!(
            fold(&def, &log),
            Err(FoldError::Transition { .. })
        ));
    }
}

//! The next actions of a run: a pure function of the definition, the folded
//! state and the current time.
//!
//! `decide` evaluates pure nodes (transform, branch, terminate) inline,
//! chaining through as many as are ready, and stops at the asynchronous
//! boundaries: an `http_call` becomes [`Command::ScheduleHttp`], a `delay`
//! becomes [`Command::WakeAt`]. The caller appends the returned events (with
//! `at = now`, in order) and enqueues the commands in one transaction.
//!
//! Semantics:
//! - A node becomes ready once every predecessor is finished. It starts if
//!   at least one incoming edge was taken (an ordinary edge from a succeeded
//!   node, or a branch edge whose label matches the branch result), and is
//!   skipped otherwise, so joins after a branch work.
//! - The run succeeds when every step is finished, with the output of the
//!   last succeeded node that has no outgoing edge; a `terminate` node ends
//!   it at once with its own status and output. Any failed step fails it.
//! - A recorded retry ([`Event::HttpAttemptFailed`] with `retry`) becomes the
//!   next attempt at once, scheduled `not_before` the recorded time.
//! - Cancellation and the run timeout win over everything else.
//!
//! Invariants (property-tested): `decide` never emits an event or command
//! for a finished step, and deciding again on the state that includes its
//! own events, at the same `now`, emits nothing.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::definition::{
    Definition, DelayConfig, HttpCallConfig, Node, NodeConfig, RetryPolicy, TerminateStatus,
};
use crate::event::{Event, HttpRequest, Recorded};
use crate::state::{FoldError, RunState, StepStatus, Wait, millis};
use crate::{expr, template};

/// Work for the outside world.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived values, built once per decision and serialized"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Send this HTTP attempt (after `not_before`), then record exactly one
    /// `http_responded` or `http_attempt_failed` for it.
    ScheduleHttp {
        /// The node.
        node_id: String,
        /// The attempt number.
        attempt: u32,
        /// The request; resolve secrets (and template escapes) with
        /// [`crate::template::resolve_secrets`] right before sending.
        request: HttpRequest,
        /// The `Idempotency-Key` header value (resolve it too).
        idempotency_key: String,
        /// How to classify failures and plan the next attempt.
        retry: RetryPolicy,
        /// Earliest send time.
        not_before: DateTime<Utc>,
    },
    /// Call `decide` again at this time (a delay ends, or the run deadline).
    WakeAt(DateTime<Utc>),
}

/// What `decide` wants done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Events to append, in order, with `at = now`.
    pub events: Vec<Event>,
    /// Commands to enqueue in the same transaction.
    pub commands: Vec<Command>,
}

impl Decision {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commands.is_empty()
    }
}

/// Decides the next events and commands. Pure.
pub fn decide(definition: &Definition, state: &RunState, now: DateTime<Utc>) -> Decision {
    let mut d = Decider {
        def: definition,
        state: state.clone(),
        now,
        out: Decision::default(),
    };
    // An internal inconsistency (a state not folded from this definition)
    // stops the decision where it is: nothing invalid is ever emitted.
    let _ = d.run();
    d.out
}

struct Decider<'a> {
    def: &'a Definition,
    /// The state with every event emitted so far applied.
    state: RunState,
    now: DateTime<Utc>,
    out: Decision,
}

impl Decider<'_> {
    fn run(&mut self) -> Result<(), FoldError> {
        if self.state.is_terminal() {
            return Ok(());
        }
        if self.state.cancel_requested {
            return self.emit(Event::RunCancelled);
        }
        if let Some(deadline) = self.state.deadline() {
            if self.now >= deadline {
                return self.emit(Event::RunTimedOut);
            }
            let fresh = self
                .state
                .steps
                .values()
                .all(|s| s.status == StepStatus::Pending);
            if fresh {
                self.wake_at(deadline);
            }
        }
        let order: Vec<&Node> = self.def.topological_order();
        loop {
            let mut progressed = false;
            for node in &order {
                if self.state.is_terminal() {
                    return Ok(());
                }
                let Some(step) = self.state.step(&node.id) else {
                    continue;
                };
                match step.status {
                    StepStatus::Pending => progressed |= self.try_start(node)?,
                    StepStatus::Running | StepStatus::Retrying => {
                        progressed |= self.advance(node)?;
                    }
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        if !self.state.is_terminal() && self.state.steps.values().all(|s| s.status.is_done()) {
            let output = self
                .state
                .last_leaf
                .as_ref()
                .and_then(|id| self.state.step(id))
                .and_then(|s| s.output.clone())
                .unwrap_or(Value::Null);
            self.emit(Event::RunSucceeded { output })?;
        }
        Ok(())
    }

    /// Asks to be woken at `at` (once per decision, however many steps
    /// want that time).
    fn wake_at(&mut self, at: DateTime<Utc>) {
        let wake = Command::WakeAt(at);
        if !self.out.commands.contains(&wake) {
            self.out.commands.push(wake);
        }
    }

    fn emit(&mut self, event: Event) -> Result<(), FoldError> {
        let recorded = Recorded {
            seq: self.state.last_seq + 1,
            at: self.now,
            event,
        };
        self.state.apply(self.def, &recorded)?;
        self.out.events.push(recorded.event);
        Ok(())
    }

    /// Starts or skips a pending node whose predecessors are all finished.
    fn try_start(&mut self, node: &Node) -> Result<bool, FoldError> {
        let mut incoming = self.def.incoming(&node.id).peekable();
        let activated = if incoming.peek().is_none() {
            true // the entry node
        } else {
            let mut any_taken = false;
            for edge in incoming {
                let Some(pred) = self.state.step(&edge.from) else {
                    return Ok(false);
                };
                match pred.status {
                    StepStatus::Succeeded => {
                        any_taken |= edge_taken(edge.label.as_deref(), pred.output.as_ref());
                    }
                    StepStatus::Skipped => {}
                    _ => return Ok(false),
                }
            }
            any_taken
        };
        if activated {
            self.emit(Event::StepStarted {
                node_id: node.id.clone(),
            })?;
            self.execute(node)?;
        } else {
            self.emit(Event::StepSkipped {
                node_id: node.id.clone(),
            })?;
        }
        Ok(true)
    }

    /// Moves an active step along; returns whether anything was emitted.
    fn advance(&mut self, node: &Node) -> Result<bool, FoldError> {
        let Some(step) = self.state.step(&node.id).cloned() else {
            return Ok(false);
        };
        let before = self.out.events.len();
        match &node.kind {
            NodeConfig::HttpCall(cfg) => {
                if let Some(response) = step.response {
                    self.emit(Event::StepSucceeded {
                        node_id: node.id.clone(),
                        output: response,
                    })?;
                } else if step.wait.is_some() {
                    // In flight.
                } else if step.attempts == 0 {
                    self.execute(node)?;
                } else if let Some(failure) =
                    step.last_failure.filter(|f| f.attempt == step.attempts)
                {
                    match (failure.retry, step.request, step.idempotency_key) {
                        (Some(retry), Some(request), Some(idempotency_key))
                            if step.attempts < cfg.retry.max_attempts =>
                        {
                            self.request(node, cfg, request, idempotency_key, retry.at)?;
                        }
                        _ => {
                            let attempts = step.attempts;
                            let plural = if attempts == 1 { "" } else { "s" };
                            self.fail(
                                node,
                                format!(
                                    "HTTP call failed after {attempts} attempt{plural}: {}",
                                    failure.error
                                ),
                            )?;
                        }
                    }
                }
            }
            NodeConfig::Delay(_) => match step.wait {
                Some(Wait::Timer { until }) if self.now >= until => {
                    self.emit(Event::TimerFired {
                        node_id: node.id.clone(),
                    })?;
                    self.delay_done(node, until)?;
                }
                Some(Wait::Timer { until }) => {
                    // Woken before the timer is due (a worker whose clock
                    // runs behind the database's, or a wake-up for another
                    // reason): arm it again so it cannot be lost.
                    self.wake_at(until);
                }
                Some(_) => {}
                None if step.timer_fired => {
                    // Fired but not finished: finish with the recorded time.
                    let until = self.now;
                    self.delay_done(node, until)?;
                }
                None => self.execute(node)?,
            },
            // A pure step is always finished by the decide that started it;
            // finish one left running anyway.
            _ => self.execute(node)?,
        }
        Ok(self.out.events.len() > before)
    }

    /// Runs a started node.
    fn execute(&mut self, node: &Node) -> Result<(), FoldError> {
        let ctx = self.state.context();
        match &node.kind {
            NodeConfig::Transform(cfg) => match eval(&cfg.expression, &ctx) {
                Ok(output) => self.succeed(node, output),
                Err(e) => self.fail(node, format!("expression failed {e}")),
            },
            NodeConfig::Branch(cfg) => match eval(&cfg.condition, &ctx) {
                Ok(v) => self.succeed(node, json!({"result": expr::is_truthy(&v)})),
                Err(e) => self.fail(node, format!("condition failed {e}")),
            },
            NodeConfig::Terminate(cfg) => {
                let output = match &cfg.output {
                    Some(source) => match eval(source, &ctx) {
                        Ok(v) => v,
                        Err(e) => return self.fail(node, format!("output expression failed {e}")),
                    },
                    None => Value::Null,
                };
                self.succeed(node, output.clone())?;
                match cfg.status {
                    TerminateStatus::Succeeded => self.emit(Event::RunSucceeded { output }),
                    TerminateStatus::Failed => self.emit(Event::RunFailed {
                        error: format!("terminated as failed by node `{}`", node.id),
                        node_id: Some(node.id.clone()),
                        output: Some(output),
                    }),
                }
            }
            NodeConfig::HttpCall(cfg) => {
                let rendered = render_request(cfg, &ctx).and_then(|request| {
                    let key = match &cfg.idempotency_key {
                        Some(t) => template::render_text(t, &ctx)
                            .map_err(|e| format!("idempotency_key {e}"))?,
                        None => format!("{}-{}", self.state.run_id, node.id),
                    };
                    Ok((request, key))
                });
                match rendered {
                    Ok((request, key)) => self.request(node, cfg, request, key, self.now),
                    Err(e) => self.fail(node, format!("cannot render the request: {e}")),
                }
            }
            NodeConfig::Delay(cfg) => {
                let until = match cfg {
                    DelayConfig::Duration { duration_ms } => Ok(self.now + millis(*duration_ms)),
                    DelayConfig::Until { until } => eval(until, &ctx)
                        .map_err(|e| format!("`until` expression failed {e}"))
                        .and_then(|v| parse_time(&v)),
                };
                match until {
                    Ok(until) => {
                        self.emit(Event::DelayScheduled {
                            node_id: node.id.clone(),
                            until,
                        })?;
                        if self.now >= until {
                            self.emit(Event::TimerFired {
                                node_id: node.id.clone(),
                            })?;
                            self.delay_done(node, until)
                        } else {
                            self.wake_at(until);
                            Ok(())
                        }
                    }
                    Err(e) => self.fail(node, e),
                }
            }
        }
    }

    fn request(
        &mut self,
        node: &Node,
        cfg: &HttpCallConfig,
        request: HttpRequest,
        idempotency_key: String,
        not_before: DateTime<Utc>,
    ) -> Result<(), FoldError> {
        let attempt = self
            .state
            .step(&node.id)
            .map_or(1, |s| s.attempts.saturating_add(1));
        self.emit(Event::HttpRequested {
            node_id: node.id.clone(),
            attempt,
            request: request.clone(),
            idempotency_key: idempotency_key.clone(),
        })?;
        self.out.commands.push(Command::ScheduleHttp {
            node_id: node.id.clone(),
            attempt,
            request,
            idempotency_key,
            retry: cfg.retry.clone(),
            not_before,
        });
        Ok(())
    }

    fn delay_done(&mut self, node: &Node, until: DateTime<Utc>) -> Result<(), FoldError> {
        self.succeed(
            node,
            json!({"until": until.to_rfc3339_opts(SecondsFormat::Millis, true)}),
        )
    }

    fn succeed(&mut self, node: &Node, output: Value) -> Result<(), FoldError> {
        self.emit(Event::StepSucceeded {
            node_id: node.id.clone(),
            output,
        })
    }

    fn fail(&mut self, node: &Node, error: String) -> Result<(), FoldError> {
        self.emit(Event::StepFailed {
            node_id: node.id.clone(),
            error: error.clone(),
        })?;
        self.emit(Event::RunFailed {
            error: format!("step `{}` failed: {error}", node.id),
            node_id: Some(node.id.clone()),
            output: None,
        })
    }
}

/// Whether an edge with `label` out of a succeeded node is taken: ordinary
/// edges always; branch edges when the label matches the result.
fn edge_taken(label: Option<&str>, output: Option<&Value>) -> bool {
    match label {
        None => true,
        Some(label) => {
            let result = output
                .and_then(|o| o.get("result"))
                .and_then(Value::as_bool);
            result.is_some_and(|r| label == if r { "true" } else { "false" })
        }
    }
}

fn eval(source: &str, ctx: &Value) -> Result<Value, expr::Error> {
    expr::eval(source, ctx)
}

/// Renders an `http_call` config into a request (secrets stay symbolic).
pub fn render_request(cfg: &HttpCallConfig, ctx: &Value) -> Result<HttpRequest, String> {
    let url = template::render_text(&cfg.url, ctx).map_err(|e| format!("url {e}"))?;
    let map = |field: &str, m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| {
                template::render_text(v, ctx)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("{field}.{k} {e}"))
            })
            .collect::<Result<_, String>>()
    };
    let headers = map("headers", &cfg.headers)?;
    let query = map("query", &cfg.query)?;
    let body = cfg
        .body
        .as_ref()
        .map(|b| template::render(b, ctx).map_err(|e| format!("body {e}")))
        .transpose()?;
    Ok(HttpRequest {
        method: cfg.method,
        url,
        headers,
        query,
        body,
        timeout_ms: cfg.timeout_ms,
    })
}

/// Reads a delay's `until` value: an RFC 3339 string or epoch milliseconds.
fn parse_time(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`until` is not an RFC 3339 timestamp ({s:?}): {e}")),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or_else(|| format!("`until` is not a valid epoch-milliseconds time ({n})")),
        other => Err(format!(
            "`until` must be an RFC 3339 timestamp or epoch milliseconds, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests;

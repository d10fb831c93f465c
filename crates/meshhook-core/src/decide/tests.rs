//! Tests of `decide`, including the state-machine properties.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::backoff;
use crate::event::{HttpErrorKind, RetryDecision};
use crate::fixtures::{api_example, at, chain, created, created_with, def, run_id, t0};
use crate::state::{RunStatus, fold};

/// A log under construction, with helpers to play orchestrator and executor.
struct Run {
    def: Definition,
    log: Vec<Recorded>,
}

impl Run {
    fn new(def: Definition, first: Recorded) -> Self {
        Run {
            def,
            log: vec![first],
        }
    }

    fn state(&self) -> RunState {
        fold(&self.def, &self.log).expect("the log folds")
    }

    fn append(&mut self, now: DateTime<Utc>, events: Vec<Event>) {
        for event in events {
            let seq = self.log.len() as i64 + 1;
            self.log.push(Recorded {
                seq,
                at: now,
                event,
            });
        }
    }

    /// Runs `decide` at `now`, records its events, checks the fixed point
    /// (see [`settled`]).
    fn decide(&mut self, now: DateTime<Utc>) -> Decision {
        let d = decide(&self.def, &self.state(), now);
        self.append(now, d.events.clone());
        let again = decide(&self.def, &self.state(), now);
        assert!(settled(&again), "not a fixed point: {again:#?}");
        d
    }

    fn respond(&mut self, now: DateTime<Utc>, node: &str, attempt: u32, status: u16, body: Value) {
        assert!(self.state().accepts_http_result(node, attempt));
        self.append(
            now,
            vec![Event::HttpResponded {
                node_id: node.into(),
                attempt,
                status,
                headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
                body,
                duration_ms: 12,
                truncated: false,
            }],
        );
    }

    fn fail_attempt(&mut self, now: DateTime<Utc>, node: &str, attempt: u32, retry: bool) {
        let policy = RetryPolicy::default();
        let retry = if retry {
            backoff::plan_retry(&policy, attempt, None, 0.5, now)
        } else {
            None
        };
        self.append(
            now,
            vec![Event::HttpAttemptFailed {
                node_id: node.into(),
                attempt,
                error: "503 Service Unavailable".into(),
                kind: HttpErrorKind::Status,
                status: Some(503),
                retry,
            }],
        );
    }
}

fn types(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.node_id() {
            Some(n) if !matches!(e, Event::RunFailed { .. }) => format!("{}:{n}", e.type_name()),
            _ => e.type_name().to_owned(),
        })
        .collect()
}

fn api_def() -> Definition {
    let mut v = api_example();
    v["edges"]
        .as_array_mut()
        .expect("edges")
        .push(json!({"from": "done", "to": "wait"}));
    // `done` is a terminate: the delay after it never runs, which is fine.
    def(v)
}

fn api_trigger() -> Recorded {
    created_with(
        json!({"body": {"user": {"id": 42}, "items": [1, 2, 3]}, "headers": {}, "query": {}}),
        None,
    )
}

#[test]
fn a_transform_chain_completes_in_one_decide() {
    let mut run = Run::new(chain(10), created(&chain(10)));
    let d = run.decide(t0());
    assert!(d.commands.is_empty());
    assert_eq!(d.events.len(), 10 * 2 + 1);
    let s = run.state();
    assert_eq!(s.status, RunStatus::Succeeded);
    assert_eq!(s.output, Some(json!(10)));
    assert_eq!(s.steps["n9"].output, Some(json!(10)));
}

#[test]
fn http_call_is_rendered_with_symbolic_secrets() {
    let mut run = Run::new(api_def(), api_trigger());
    let d = run.decide(at(1));
    assert_eq!(
        types(&d.events),
        vec![
            "step_started:pick",
            "step_succeeded:pick",
            "step_started:call",
            "http_requested:call"
        ]
    );
    let [
        Command::ScheduleHttp {
            node_id,
            attempt,
            request,
            idempotency_key,
            not_before,
            ..
        },
    ] = d.commands.as_slice()
    else {
        panic!("one http command: {d:?}");
    };
    assert_eq!(
        (node_id.as_str(), *attempt, *not_before),
        ("call", 1, at(1))
    );
    assert_eq!(request.url, "https://api.example.com/users/42");
    assert_eq!(
        request.headers["Authorization"],
        "Bearer {{ secrets.API_TOKEN }}"
    );
    assert_eq!(request.body, Some(json!({"count": 3})));
    assert_eq!(request.timeout_ms, 30_000);
    assert_eq!(idempotency_key, &format!("{}-call", run_id()));
    let s = run.state();
    assert_eq!(s.status, RunStatus::Running);
    assert_eq!(s.frontier(), vec!["call"]);
    // Nothing happens until the executor reports.
    assert!(decide(&run.def, &s, at(100)).is_empty());
}

#[test]
fn a_response_continues_through_branch_and_terminate() {
    let mut run = Run::new(api_def(), api_trigger());
    run.decide(at(1));
    run.respond(at(2), "call", 1, 200, json!({"ok": true}));
    let d = run.decide(at(2));
    assert_eq!(
        types(&d.events),
        vec![
            "step_succeeded:call",
            "step_started:ok",
            "step_succeeded:ok",
            "step_started:done",
            "step_succeeded:done",
            "run_succeeded"
        ]
    );
    let s = run.state();
    assert_eq!(s.status, RunStatus::Succeeded);
    assert_eq!(s.output, Some(json!({"ok": true})));
    assert_eq!(s.steps["call"].output.as_ref().unwrap()["status"], 200);
    assert_eq!(s.steps["ok"].output, Some(json!({"result": true})));
    assert_eq!(s.finished_at, Some(at(2)));
    // A terminate ends the run at once: the other side is left pending.
    assert_eq!(s.steps["fail"].status, StepStatus::Pending);
    // A late duplicate is refused by the guard.
    assert!(!s.accepts_http_result("call", 1));
}

#[test]
fn terminate_failed_fails_the_run_with_its_output() {
    let mut run = Run::new(api_def(), api_trigger());
    run.decide(at(1));
    run.respond(at(2), "call", 1, 404, json!("nope"));
    run.decide(at(2));
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.output, Some(json!({"error": "nope"})));
    assert_eq!(s.failed_node.as_deref(), Some("fail"));
    assert_eq!(s.steps["done"].status, StepStatus::Skipped);
}

#[test]
fn recorded_retries_are_scheduled_then_exhausted() {
    let mut run = Run::new(api_def(), api_trigger());
    run.decide(at(1));
    for attempt in 1..=4 {
        run.fail_attempt(at(2), "call", attempt, true);
        assert_eq!(run.state().steps["call"].status, StepStatus::Retrying);
        assert_eq!(run.state().status, RunStatus::Waiting);
        let d = run.decide(at(2));
        assert_eq!(types(&d.events), vec!["http_requested:call"]);
        let Command::ScheduleHttp {
            attempt: a,
            not_before,
            idempotency_key,
            ..
        } = &d.commands[0]
        else {
            panic!()
        };
        assert_eq!(*a, attempt + 1);
        assert!(*not_before > at(2));
        assert_eq!(idempotency_key, &format!("{}-call", run_id()));
    }
    assert_eq!(run.state().steps["call"].attempts, 5);
    run.fail_attempt(at(3), "call", 5, false);
    let d = run.decide(at(3));
    assert_eq!(types(&d.events), vec!["step_failed:call", "run_failed"]);
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.failed_node.as_deref(), Some("call"));
    assert!(
        s.error.as_deref().unwrap().contains("after 5 attempts"),
        "{:?}",
        s.error
    );
}

#[test]
fn a_retry_beyond_max_attempts_fails() {
    let mut run = Run::new(api_def(), api_trigger());
    run.decide(at(1));
    run.append(
        at(2),
        vec![Event::HttpAttemptFailed {
            node_id: "call".into(),
            attempt: 1,
            error: "x".into(),
            kind: HttpErrorKind::Timeout,
            status: None,
            retry: Some(RetryDecision {
                delay_ms: 1,
                at: at(3),
            }),
        }],
    );
    // max_attempts comes from the definition; 1 < 5, so this one retries.
    assert_eq!(
        types(&run.decide(at(2)).events),
        vec!["http_requested:call"]
    );
}

/// A decision that changes nothing: no events, and no commands but
/// re-armed timers (a waiting delay arms its timer again on every pass, so
/// an early wake-up cannot lose it).
fn settled(d: &Decision) -> bool {
    d.events.is_empty() && d.commands.iter().all(|c| matches!(c, Command::WakeAt(_)))
}

fn delay_def(config: Value) -> Definition {
    def(json!({
        "nodes": [
            {"id": "wait", "type": "delay", "config": config},
            {"id": "after", "type": "transform", "config": {"expression": "steps.wait"}}
        ],
        "edges": [{"from": "wait", "to": "after"}]
    }))
}

#[test]
fn delays_wait_for_the_clock() {
    let mut run = Run::new(
        delay_def(json!({"duration_ms": 60_000})),
        created_with(json!({}), None),
    );
    let d = run.decide(at(0));
    assert_eq!(
        types(&d.events),
        vec!["step_started:wait", "delay_scheduled:wait"]
    );
    assert_eq!(d.commands, vec![Command::WakeAt(at(60))]);
    assert_eq!(run.state().status, RunStatus::Waiting);
    // Woken before the timer is due (a clock behind the database's): no
    // event, and the timer is armed again so it cannot be lost.
    let early = run.decide(at(59));
    assert!(early.events.is_empty());
    assert_eq!(early.commands, vec![Command::WakeAt(at(60))]);
    let d = run.decide(at(61));
    assert_eq!(
        types(&d.events),
        vec![
            "timer_fired:wait",
            "step_succeeded:wait",
            "step_started:after",
            "step_succeeded:after",
            "run_succeeded"
        ]
    );
    assert_eq!(
        run.state().output,
        Some(json!({"until": "2023-11-14T22:14:20.000Z"}))
    );
}

#[test]
fn delay_until_reads_timestamps_and_epoch_millis() {
    let trigger =
        json!({"body": {"at": "2023-11-14T22:13:30Z", "ms": 1_700_000_030_000_i64, "bad": true}});
    let mut run = Run::new(
        delay_def(json!({"until": "trigger.body.at"})),
        created_with(trigger.clone(), None),
    );
    assert_eq!(run.decide(at(0)).commands, vec![Command::WakeAt(at(10))]);
    let mut run = Run::new(
        delay_def(json!({"until": "trigger.body.ms"})),
        created_with(trigger.clone(), None),
    );
    assert_eq!(run.decide(at(0)).commands, vec![Command::WakeAt(at(30))]);
    // In the past: no wait at all.
    let mut run = Run::new(
        delay_def(json!({"until": "trigger.body.ms"})),
        created_with(trigger.clone(), None),
    );
    assert!(run.decide(at(40)).commands.is_empty());
    assert_eq!(run.state().status, RunStatus::Succeeded);
    let mut run = Run::new(
        delay_def(json!({"until": "trigger.body.bad"})),
        created_with(trigger, None),
    );
    run.decide(at(0));
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    assert!(
        s.steps["wait"]
            .error
            .as_deref()
            .unwrap()
            .contains("RFC 3339")
    );
}

#[test]
fn runtime_expression_errors_fail_step_and_run() {
    let d = def(json!({"nodes": [
        {"id": "a", "type": "transform", "config": {"expression": "length(trigger.body.start)"}}
    ]}));
    let mut run = Run::new(d, created(&chain(1)));
    let out = run.decide(at(0));
    assert_eq!(
        types(&out.events),
        vec!["step_started:a", "step_failed:a", "run_failed"]
    );
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    let err = s.error.unwrap();
    assert!(
        err.contains("step `a` failed: expression failed at position"),
        "{err}"
    );
}

#[test]
fn cancel_and_timeout_win() {
    let mut run = Run::new(
        delay_def(json!({"duration_ms": 60_000})),
        created_with(json!({}), Some(30_000)),
    );
    let d = run.decide(at(0));
    assert_eq!(
        d.commands,
        vec![Command::WakeAt(at(30)), Command::WakeAt(at(60))]
    );
    assert!(settled(&run.decide(at(29))));
    let d = run.decide(at(30));
    assert_eq!(types(&d.events), vec!["run_timed_out"]);
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.error.as_deref(), Some("timed out after 30000 ms"));

    let mut run = Run::new(
        delay_def(json!({"duration_ms": 60_000})),
        created_with(json!({}), None),
    );
    run.decide(at(0));
    run.append(
        at(1),
        vec![Event::CancelRequested {
            reason: Some("user".into()),
        }],
    );
    assert_eq!(types(&run.decide(at(1)).events), vec!["run_cancelled"]);
    assert_eq!(run.state().status, RunStatus::Cancelled);
    assert!(run.decide(at(100)).is_empty());
}

#[test]
fn fan_out_and_join_after_a_branch() {
    let d = def(json!({
        "nodes": [
            {"id": "start", "type": "transform", "config": {"expression": "trigger.body"}},
            {"id": "b", "type": "branch", "config": {"condition": "steps.start.go"}},
            {"id": "yes", "type": "transform", "config": {"expression": "'yes'"}},
            {"id": "no", "type": "transform", "config": {"expression": "'no'"}},
            {"id": "side", "type": "transform", "config": {"expression": "'side'"}},
            {"id": "join", "type": "transform", "config": {"expression": "[steps.yes, steps.no, steps.side]"}}
        ],
        "edges": [
            {"from": "start", "to": "b"}, {"from": "start", "to": "side"},
            {"from": "b", "to": "yes", "label": "true"}, {"from": "b", "to": "no", "label": "false"},
            {"from": "yes", "to": "join"}, {"from": "no", "to": "join"}, {"from": "side", "to": "join"}
        ]
    }));
    for (go, expected) in [
        (true, json!(["yes", null, "side"])),
        (false, json!([null, "no", "side"])),
    ] {
        let mut run = Run::new(d.clone(), created_with(json!({"body": {"go": go}}), None));
        run.decide(at(0));
        let s = run.state();
        assert_eq!(s.status, RunStatus::Succeeded);
        assert_eq!(s.output, Some(expected));
        let skipped = if go { "no" } else { "yes" };
        assert_eq!(s.steps[skipped].status, StepStatus::Skipped);
    }
}

#[test]
fn a_whole_branch_skipped_downstream() {
    // b -false-> x -> y: when b is true, x and y are both skipped.
    let d = def(json!({
        "nodes": [
            {"id": "b", "type": "branch", "config": {"condition": "`true`"}},
            {"id": "t", "type": "transform", "config": {"expression": "'t'"}},
            {"id": "x", "type": "transform", "config": {"expression": "'x'"}},
            {"id": "y", "type": "transform", "config": {"expression": "'y'"}}
        ],
        "edges": [
            {"from": "b", "to": "t", "label": "true"}, {"from": "b", "to": "x", "label": "false"},
            {"from": "x", "to": "y"}
        ]
    }));
    let mut run = Run::new(d, created_with(json!({}), None));
    run.decide(at(0));
    let s = run.state();
    assert_eq!(s.status, RunStatus::Succeeded);
    assert_eq!(s.output, Some(json!("t")));
    assert_eq!(s.steps["y"].status, StepStatus::Skipped);
}

#[test]
fn render_failures_fail_the_step() {
    let d = def(json!({"nodes": [
        {"id": "c", "type": "http_call", "config": {"url": "https://x/{{ length(trigger.body.start) }}"}}
    ]}));
    let mut run = Run::new(d, created(&chain(1)));
    let out = run.decide(at(0));
    assert!(out.commands.is_empty());
    let s = run.state();
    assert_eq!(s.status, RunStatus::Failed);
    assert!(s.error.unwrap().contains("cannot render the request: url"));
}

#[test]
fn custom_idempotency_key_and_query() {
    let d = def(json!({"nodes": [
        {"id": "c", "type": "http_call", "config": {
            "url": "https://x", "query": {"n": "{{ trigger.body.start }}"},
            "idempotency_key": "order-{{ trigger.body.start }}"}}
    ]}));
    let mut run = Run::new(d, created(&chain(1)));
    let out = run.decide(at(0));
    let Command::ScheduleHttp {
        request,
        idempotency_key,
        ..
    } = &out.commands[0]
    else {
        panic!()
    };
    assert_eq!(idempotency_key, "order-1");
    assert_eq!(request.query["n"], "1");
    assert_eq!(request.method, crate::definition::HttpMethod::Get);
    assert_eq!(request.body, None);
    // An http_call as the last node: the run's output is the response.
    run.respond(at(1), "c", 1, 201, json!({"id": 9}));
    run.decide(at(1));
    assert_eq!(run.state().output.unwrap()["body"], json!({"id": 9}));
}

// ---------------------------------------------------------------------------
// Properties, over random executions driven by a script of choices.

fn prop_defs() -> Vec<Definition> {
    vec![
        api_def(),
        chain(3),
        def(json!({
            "nodes": [
                {"id": "a", "type": "http_call", "config": {"url": "https://a", "retry": {"max_attempts": 3}}},
                {"id": "d", "type": "delay", "config": {"duration_ms": 5000}},
                {"id": "b", "type": "http_call", "config": {"url": "https://b/{{ steps.a.status }}"}},
                {"id": "j", "type": "branch", "config": {"condition": "steps.b.status == `200`"}},
                {"id": "ok", "type": "transform", "config": {"expression": "[steps.a.body, steps.b.body]"}},
                {"id": "ko", "type": "terminate", "config": {"status": "failed"}}
            ],
            "edges": [
                {"from": "a", "to": "d"}, {"from": "a", "to": "b"}, {"from": "d", "to": "j"}, {"from": "b", "to": "j"},
                {"from": "j", "to": "ok", "label": "true"}, {"from": "j", "to": "ko", "label": "false"}
            ]
        })),
    ]
}

/// Plays a random execution; returns the whole log. Checks on the way that
/// decide is a fixed point and never touches finished steps.
fn play(def: &Definition, timeout: Option<u64>, script: &[u8]) -> Vec<Recorded> {
    let mut run = Run::new(
        def.clone(),
        created_with(
            json!({"body": {"start": 1, "user": {"id": 1}, "items": []}}),
            timeout,
        ),
    );
    let mut now = t0();
    for &choice in script {
        let before = run.state();
        if before.is_terminal() {
            break;
        }
        let d = decide(def, &before, now);
        for e in &d.events {
            if let Some(node) = e
                .node_id()
                .filter(|_| !matches!(e, Event::RunFailed { .. }))
            {
                assert!(
                    !before.steps[node].status.is_done(),
                    "{e:?} for a finished step"
                );
            }
        }
        for c in &d.commands {
            if let Command::ScheduleHttp { node_id, .. } = c {
                assert!(!before.steps[node_id].status.is_done());
            }
        }
        run.append(now, d.events);
        assert!(settled(&decide(def, &run.state(), now)), "fixed point");

        // The environment acts.
        let state = run.state();
        if state.is_terminal() {
            break;
        }
        let in_flight: Vec<(String, u32)> = state
            .steps
            .iter()
            .filter_map(|(id, s)| match s.wait {
                Some(Wait::Http { attempt }) => Some((id.clone(), attempt)),
                _ => None,
            })
            .collect();
        now += chrono::Duration::milliseconds(i64::from(choice % 16) * 700);
        match (choice / 16) % 6 {
            0 | 1 if !in_flight.is_empty() => {
                let (node, attempt) = &in_flight[usize::from(choice) % in_flight.len()];
                let status = if choice % 3 == 0 { 500 } else { 200 };
                run.respond(now, node, *attempt, status, json!({"n": choice}));
            }
            2 | 3 if !in_flight.is_empty() => {
                let (node, attempt) = &in_flight[usize::from(choice) % in_flight.len()];
                let retry = choice % 5 != 0;
                let policy = match &def.node(node).expect("node").kind {
                    NodeConfig::HttpCall(c) => c.retry.clone(),
                    _ => RetryPolicy::default(),
                };
                let plan = if retry {
                    backoff::plan_retry(&policy, *attempt, None, f64::from(choice) / 256.0, now)
                } else {
                    None
                };
                run.append(
                    now,
                    vec![Event::HttpAttemptFailed {
                        node_id: node.clone(),
                        attempt: *attempt,
                        error: "boom".into(),
                        kind: HttpErrorKind::Connect,
                        status: None,
                        retry: plan,
                    }],
                );
            }
            4 if choice % 7 == 0 => {
                run.append(now, vec![Event::CancelRequested { reason: None }]);
            }
            _ => now += chrono::Duration::seconds(3),
        }
    }
    run.log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn decide_is_a_fixed_point_and_spares_finished_steps(
        which in 0usize..3,
        timeout in prop::option::of(1_000u64..60_000),
        script in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let def = &prop_defs()[which];
        let log = play(def, timeout, &script);
        // A log written this way replays without a mismatch.
        let report = crate::replay::replay(def, &log).expect("folds");
        prop_assert!(report.deterministic, "{:#?}", report.mismatches);
    }

    #[test]
    fn folding_any_prefix_is_deterministic(
        which in 0usize..3,
        script in prop::collection::vec(any::<u8>(), 1..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let def = &prop_defs()[which];
        let log = play(def, None, &script);
        let n = cut.index(log.len()) + 1;
        let a = fold(def, &log[..n]).expect("folds");
        let b = fold(def, &log[..n]).expect("folds");
        prop_assert_eq!(&a, &b);
        // Incremental application agrees with a fresh fold.
        let mut inc = RunState::new(def, &log[0]).expect("created");
        for r in &log[1..n] {
            inc.apply(def, r).expect("applies");
        }
        prop_assert_eq!(&inc, &a);
        // And the state survives a JSON round trip (it is stored/served).
        let back: RunState = serde_json::from_value(serde_json::to_value(&a).expect("ser")).expect("de");
        prop_assert_eq!(back, a);
    }
}

//! Replay checks and resume-from-step, both pure functions of a log.
//!
//! - [`replay`] re-runs `decide` at every point of a log where the
//!   orchestrator wrote events, with the recorded time, and reports every
//!   place where the recorded events differ from what `decide` yields now
//!   (`GET /api/v1/runs/{id}/replay`, `meshhook replay <run>`).
//! - [`resume_events`] builds the opening events of a new run that resumes
//!   an old one from a chosen step.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decide::decide;
use crate::definition::Definition;
use crate::event::{Event, Recorded};
use crate::state::{FoldError, RunState, StepStatus, fold};

/// One place where the log and a fresh `decide` disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Sequence number of the first recorded event of the batch.
    pub seq: i64,
    /// What `decide` yields for the state before `seq`, at the recorded time.
    pub expected: Vec<Event>,
    /// What the log holds from `seq` on (as many events as expected, or up
    /// to the next event not written by `decide`).
    pub recorded: Vec<Event>,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Whether every batch matched (and the log folds).
    pub deterministic: bool,
    /// Where it did not.
    pub mismatches: Vec<Mismatch>,
}

/// Whether `decide` writes this kind of event (the others come from the
/// API or the executor).
fn written_by_decide(event: &Event) -> bool {
    !matches!(
        event,
        Event::RunCreated { .. } | Event::CancelRequested { .. }
    ) && !event.is_http_result()
}

/// Replays `log` against `definition`. A log that does not fold is an error.
pub fn replay(definition: &Definition, log: &[Recorded]) -> Result<Report, FoldError> {
    // The whole log must fold first; this also checks sequence numbers.
    fold(definition, log)?;
    let mut mismatches = Vec::new();
    let mut state: Option<RunState> = None;
    let mut i = 0;
    // A resumed run is created with copies of its parent's events for the
    // steps before the resume point, all recorded with `run_created`: they
    // are facts of its creation, not decisions of its own.
    let created_with = match log.first() {
        Some(Recorded {
            at,
            event:
                Event::RunCreated {
                    parent_run_id: Some(_),
                    ..
                },
            ..
        }) => log.iter().take_while(|r| r.at == *at).count(),
        _ => 0,
    };
    while i < log.len() {
        let recorded = &log[i];
        if i < created_with || !written_by_decide(&recorded.event) {
            apply(definition, &mut state, recorded)?;
            i += 1;
            continue;
        }
        let Some(before) = state.as_ref() else {
            return Err(FoldError::Empty);
        };
        let expected = decide(definition, before, recorded.at).events;
        let batch: Vec<&Recorded> = log[i..]
            .iter()
            .take(expected.len().max(1))
            .take_while(|r| written_by_decide(&r.event) && r.at == recorded.at)
            .collect();
        let matches = batch.len() == expected.len()
            && batch.iter().zip(&expected).all(|(r, e)| &r.event == e);
        if !matches {
            mismatches.push(Mismatch {
                seq: recorded.seq,
                expected,
                recorded: batch.iter().map(|r| r.event.clone()).collect(),
            });
        }
        for r in &batch {
            apply(definition, &mut state, r)?;
        }
        i += batch.len().max(1);
    }
    Ok(Report {
        deterministic: mismatches.is_empty(),
        mismatches,
    })
}

fn apply(
    definition: &Definition,
    state: &mut Option<RunState>,
    recorded: &Recorded,
) -> Result<(), FoldError> {
    match state {
        Some(s) => s.apply(definition, recorded),
        None => {
            *state = Some(RunState::new(definition, recorded)?);
            Ok(())
        }
    }
}

/// Why a resume is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The old log does not fold.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// The step is not in the definition.
    #[error("node `{0}` is not part of this workflow version")]
    UnknownNode(String),
}

/// The opening events of a new run (`new_run_id`) that resumes `log` from
/// `from_node`: `run_created` (same workflow, version and trigger, with
/// `parent_run_id` set), then every event of each step that finished
/// (succeeded or skipped) and is not `from_node` or downstream of it, in the
/// original order. Everything else (those steps, unfinished steps, the old
/// run's ending) is dropped, so `decide` re-executes from there. Append the
/// result as seq 1.. of the new run and call `decide`.
pub fn resume_events(
    definition: &Definition,
    log: &[Recorded],
    from_node: &str,
    new_run_id: Uuid,
) -> Result<Vec<Event>, ResumeError> {
    let state = fold(definition, log)?;
    if definition.node(from_node).is_none() {
        return Err(ResumeError::UnknownNode(from_node.to_owned()));
    }
    // `from_node` and everything reachable from it.
    let mut redo: BTreeSet<&str> = BTreeSet::from([from_node]);
    let mut queue = vec![from_node];
    while let Some(n) = queue.pop() {
        for e in definition.outgoing(n) {
            if redo.insert(&e.to) {
                queue.push(&e.to);
            }
        }
    }
    let keep = |id: &str| {
        !redo.contains(id)
            && state
                .step(id)
                .is_some_and(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
    };
    let mut events = Vec::new();
    for r in log {
        match &r.event {
            Event::RunCreated {
                workflow_id,
                version,
                trigger,
                timeout_ms,
                run_id,
                ..
            } => events.push(Event::RunCreated {
                run_id: new_run_id,
                workflow_id: *workflow_id,
                version: *version,
                trigger: trigger.clone(),
                timeout_ms: *timeout_ms,
                parent_run_id: Some(*run_id),
            }),
            Event::RunFailed { .. } => {}
            e => {
                if e.node_id().is_some_and(keep) {
                    events.push(e.clone());
                }
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, chain, created, created_with, def, rec};
    use crate::state::RunStatus;
    use serde_json::json;

    fn record(log: &mut Vec<Recorded>, at: chrono::DateTime<chrono::Utc>, events: Vec<Event>) {
        for event in events {
            let seq = log.len() as i64 + 1;
            log.push(Recorded { seq, at, event });
        }
    }

    fn http_def() -> Definition {
        def(json!({
            "nodes": [
                {"id": "a", "type": "transform", "config": {"expression": "trigger.body"}},
                {"id": "c", "type": "http_call", "config": {"url": "https://x"}},
                {"id": "z", "type": "transform", "config": {"expression": "steps.c.status"}}
            ],
            "edges": [{"from": "a", "to": "c"}, {"from": "c", "to": "z"}]
        }))
    }

    fn http_log(d: &Definition) -> Vec<Recorded> {
        let mut log = vec![created_with(json!({"body": 1}), None)];
        let out = decide(d, &fold(d, &log).unwrap(), at(1)).events;
        record(&mut log, at(1), out);
        record(
            &mut log,
            at(2),
            vec![Event::HttpResponded {
                node_id: "c".into(),
                attempt: 1,
                status: 500,
                headers: Default::default(),
                body: json!(null),
                duration_ms: 3,
                truncated: false,
            }],
        );
        let out = decide(d, &fold(d, &log).unwrap(), at(3)).events;
        record(&mut log, at(3), out);
        log
    }

    #[test]
    fn a_log_written_by_decide_replays_cleanly() {
        let d = http_def();
        let log = http_log(&d);
        assert_eq!(fold(&d, &log).unwrap().status, RunStatus::Succeeded);
        let report = replay(&d, &log).unwrap();
        assert!(report.deterministic, "{report:#?}");
    }

    #[test]
    fn tampering_is_reported() {
        let d = chain(3);
        let mut log = vec![created(&d)];
        let out = decide(&d, &fold(&d, &log).unwrap(), at(0)).events;
        record(&mut log, at(0), out);
        // Change a recorded output (still a valid log).
        log[2] = rec(
            3,
            0,
            Event::StepSucceeded {
                node_id: "n0".into(),
                output: json!(100),
            },
        );
        let report = replay(&d, &log).unwrap();
        assert!(!report.deterministic);
        assert_eq!(report.mismatches[0].seq, 2);
    }

    #[test]
    fn resume_keeps_upstream_and_reruns_from_the_step() {
        let d = http_def();
        let log = http_log(&d);
        let new_id = Uuid::from_u128(0x3333);
        let events = resume_events(&d, &log, "c", new_id).unwrap();
        let types: Vec<&str> = events.iter().map(Event::type_name).collect();
        assert_eq!(types, vec!["run_created", "step_started", "step_succeeded"]);
        let Event::RunCreated {
            run_id,
            parent_run_id,
            ..
        } = &events[0]
        else {
            panic!()
        };
        assert_eq!(*run_id, new_id);
        assert!(parent_run_id.is_some());
        let new_log: Vec<Recorded> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                seq: i as i64 + 1,
                at: at(10),
                event,
            })
            .collect();
        let s = fold(&d, &new_log).unwrap();
        assert_eq!(s.steps["a"].status, StepStatus::Succeeded);
        assert_eq!(s.steps["c"].status, StepStatus::Pending);
        let next = decide(&d, &s, at(10));
        assert_eq!(next.commands.len(), 1, "the call is made again");
        assert!(matches!(
            resume_events(&d, &log, "nope", new_id),
            Err(ResumeError::UnknownNode(_))
        ));
    }
}

//! Runs through the API with an orchestrator running in-process: test runs
//! to completion, detail with steps, events, list filters and keyset
//! pagination under concurrent inserts, cancel, resume, replay, dead
//! letters.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, User, simple_definition};

fn delayed_definition() -> Value {
    json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "trigger.body"}},
            {"id": "wait", "type": "delay", "config": {"duration_ms": 600000}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.pick"}}
        ],
        "edges": [{"from": "pick", "to": "wait"}, {"from": "wait", "to": "done"}]
    })
}

fn failing_definition() -> Value {
    json!({
        "nodes": [
            {"id": "check", "type": "transform", "config": {"expression": "trigger.body.ok"}},
            {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{error: 'nope'}"}}
        ],
        "edges": [{"from": "check", "to": "fail"}]
    })
}

async fn page(app: &App, u: &User, pid: Uuid, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/projects/{pid}/runs?{query}"), &u.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

#[tokio::test]
async fn test_run_completes_with_steps_events_and_replay() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("runner").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    let run = app
        .test_run(&u, wid, json!({"items": [1, 2, 3], "user": {"id": 7}}))
        .await;
    let detail = app.wait_run(&u, run, &["succeeded"]).await;
    assert_eq!(detail["output"], json!({"n": 3, "who": {"id": 7}}));
    assert_eq!(detail["workflow_id"], json!(wid));
    assert_eq!(detail["version"], Value::Null);
    assert_eq!(detail["trigger"]["body"]["items"], json!([1, 2, 3]));
    assert!(detail["finished_at"].is_string());
    let steps = detail["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["node_id"], "pick");
    assert_eq!(steps[0]["status"], "succeeded");
    assert_eq!(steps[0]["output"], json!({"n": 3, "who": {"id": 7}}));
    assert!(steps[0]["started_at"].is_string());
    assert_eq!(steps[1]["node_id"], "done");
    assert_eq!(steps[1]["status"], "succeeded");

    let events = app
        .get(&format!("/api/v1/runs/{run}/events"), &u.token)
        .await;
    let list = events.body.as_array().unwrap();
    assert_eq!(list[0]["seq"], 1);
    assert_eq!(list[0]["type"], "run_created");
    assert_eq!(list.last().unwrap()["type"], "run_succeeded");
    let seqs: Vec<i64> = list.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=list.len() as i64).collect::<Vec<_>>());
    let tail = app
        .get(
            &format!("/api/v1/runs/{run}/events?after=2&limit=1"),
            &u.token,
        )
        .await;
    assert_eq!(tail.body.as_array().unwrap().len(), 1);
    assert_eq!(tail.body[0]["seq"], 3);

    let replay = app
        .get(&format!("/api/v1/runs/{run}/replay"), &u.token)
        .await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.body["deterministic"], true, "{}", replay.text);
    assert_eq!(replay.body["mismatches"], json!([]));

    // Resume from the last step: a new run, same definition, parent set.
    let r = app
        .post(
            &format!("/api/v1/runs/{run}/resume"),
            &u.token,
            json!({"from_node": "done"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let child: Uuid = r.body["run_id"].as_str().unwrap().parse().unwrap();
    let child_detail = app.wait_run(&u, child, &["succeeded"]).await;
    assert_eq!(child_detail["parent_run_id"], json!(run));
    assert_eq!(child_detail["output"], detail["output"]);
    assert_eq!(child_detail["trigger_kind"], "resume");
    let r = app
        .post(
            &format!("/api/v1/runs/{run}/resume"),
            &u.token,
            json!({"from_node": "ghost"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // An invalid draft cannot be test-run.
    app.put(
        &format!("/api/v1/workflows/{wid}"),
        &u.token,
        json!({"definition": {"nodes": []}}),
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{wid}/test-runs"),
            &u.token,
            json!({"payload": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["path"], "/nodes");
}

#[tokio::test]
async fn list_filters_and_stable_cursor_pagination() {
    let app = App::spawn().await;
    let u = app.user("lister").await;
    let pid = app.project(&u, "P").await;
    let w1 = app.workflow(&u, pid, simple_definition()).await;
    let w2 = app.workflow(&u, pid, simple_definition()).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            app.test_run(&u, if i % 2 == 0 { w1 } else { w2 }, json!({"items": [i]}))
                .await,
        );
    }

    // Page through 3 at a time, inserting more runs between pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".into(),
        };
        let body = page(&app, &u, pid, &q).await;
        for item in body["items"].as_array().unwrap() {
            seen.push((
                item["created_at"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().parse::<Uuid>().unwrap(),
            ));
        }
        pages += 1;
        // Concurrent inserts: newer than every cursor, so never on a later page.
        app.test_run(&u, w1, json!({"items": []})).await;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<Uuid> = seen.iter().map(|s| s.1).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert_eq!(unique, made.iter().copied().collect::<HashSet<_>>());
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    // Filters.
    let by_wf = page(&app, &u, pid, &format!("workflow_id={w2}&limit=100")).await;
    assert_eq!(by_wf["items"].as_array().unwrap().len(), 3);
    assert!(
        by_wf["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["workflow_id"] == json!(w2))
    );
    let queued = page(&app, &u, pid, "status=queued&limit=100").await;
    assert_eq!(queued["items"].as_array().unwrap().len(), 10);
    assert_eq!(
        page(&app, &u, pid, "status=succeeded").await["items"],
        json!([])
    );
    let future = page(&app, &u, pid, "created_after=2999-01-01T00:00:00Z").await;
    assert_eq!(future["items"], json!([]));
    let past = page(&app, &u, pid, "created_before=2000-01-01T00:00:00Z").await;
    assert_eq!(past["items"], json!([]));
    let all = page(
        &app,
        &u,
        pid,
        "created_after=2000-01-01T00:00:00Z&limit=200",
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 10);
    assert_eq!(all["next_cursor"], Value::Null);

    for bad in [
        "status=bogus",
        "cursor=not-a-cursor",
        "limit=abc",
        "unknown=1",
        "workflow_id=nope",
    ] {
        let r = app
            .get(&format!("/api/v1/projects/{pid}/runs?{bad}"), &u.token)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.body["code"].is_string());
    }
}

#[tokio::test]
async fn cancel_and_dead_letters() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("canceller").await;
    let pid = app.project(&u, "P").await;
    let slow = app.workflow(&u, pid, delayed_definition()).await;
    let run = app.test_run(&u, slow, json!({"x": 1})).await;
    let waiting = app.wait_run(&u, run, &["waiting"]).await;
    let wait_step = waiting["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node_id"] == "wait")
        .unwrap()
        .clone();
    assert_eq!(wait_step["status"], "running");
    let r = app
        .post(&format!("/api/v1/runs/{run}/cancel"), &u.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancel_requested");
    let done = app.wait_run(&u, run, &["cancelled"]).await;
    assert!(done["finished_at"].is_string());
    let again = app
        .post(&format!("/api/v1/runs/{run}/cancel"), &u.token, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["code"], "run_finished");

    // A failing run lands in the dead-letter view with reason and last step.
    let bad = app.workflow(&u, pid, failing_definition()).await;
    let failed = app.test_run(&u, bad, json!({"ok": false})).await;
    app.wait_run(&u, failed, &["failed"]).await;
    let dl = app
        .get(&format!("/api/v1/projects/{pid}/dead-letter"), &u.token)
        .await;
    assert_eq!(dl.status, StatusCode::OK, "{}", dl.text);
    let items = dl.body.as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", dl.text);
    assert_eq!(items[0]["run_id"], json!(failed));
    assert_eq!(items[0]["last_step"], "fail");
    assert!(items[0]["reason"].is_string());
    assert!(items[0]["failed_at"].is_string());
    // The cancelled run is not a dead letter; the failed one is filterable.
    let f = page(&app, &u, pid, "status=failed").await;
    assert_eq!(f["items"][0]["id"], json!(failed));
}

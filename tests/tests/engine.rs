//! The engine end to end, both workers in process against a real database
//! and a loopback HTTP stub: the happy path, retries with one
//! Idempotency-Key, Retry-After, exhaustion into the dead-letter view, and
//! resume from the HTTP step.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::Utc;
use meshhook_db::vault::Keyring;
use meshhook_executor::egress::Egress;
use meshhook_orchestrator::engine::{self, Origin, Version};
use meshhook_system_tests::TestDb;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const KEK: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// One request the stub saw.
#[derive(Clone, Debug)]
struct Seen {
    key: String,
    at: Instant,
}

/// A stub that answers from a script of statuses (then 200), with an
/// optional Retry-After on failures.
async fn stub(
    script: Vec<u16>,
    retry_after: Option<&'static str>,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/api",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let s = s.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut v = s.lock().unwrap();
                    v.push(Seen {
                        key: headers
                            .get("idempotency-key")
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .to_owned(),
                        at: Instant::now(),
                    });
                    v.len()
                };
                let status = script.get(n - 1).copied().unwrap_or(200);
                let mut h = HeaderMap::new();
                if status != 200
                    && let Some(ra) = retry_after
                {
                    h.insert("retry-after", ra.parse().unwrap());
                }
                (
                    StatusCode::from_u16(status).unwrap(),
                    h,
                    axum::Json(
                        json!({"status": status, "user": body.0["user"], "ok": status == 200}),
                    ),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn workflow(url: &str, max_attempts: u32) -> Value {
    json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "{user: trigger.body.user}"}},
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": url, "body": {"user": "{{ steps.pick.user }}"},
                "timeout_ms": 2000, "retry": {"max_attempts": max_attempts, "base_ms": 50, "max_ms": 200}}},
            {"id": "ok", "type": "branch", "config": {"condition": "steps.call.status == `200`"}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "{user: steps.call.body.user, status: steps.call.status}"}},
            {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{error: steps.call.body}"}}
        ],
        "edges": [
            {"from": "pick", "to": "call"}, {"from": "call", "to": "ok"},
            {"from": "ok", "to": "done", "label": "true"}, {"from": "ok", "to": "fail", "label": "false"}
        ]
    })
}

struct Engine {
    db: TestDb,
    token: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Engine {
    async fn start() -> Self {
        let db = TestDb::new().await;
        let token = CancellationToken::new();
        let mut orch = meshhook_orchestrator::Context::new(db.pool.clone());
        orch.options.poll = Duration::from_millis(100);
        let exec = meshhook_executor::Context::new(
            db.pool.clone(),
            Arc::new(Keyring::parse(KEK, &[]).unwrap()),
            Arc::new(Egress::parse("127.0.0.1/32").unwrap()),
            meshhook_executor::Options {
                poll: Duration::from_millis(100),
                ..meshhook_executor::Options::default()
            },
        )
        .unwrap();
        let tasks = vec![
            tokio::spawn(meshhook_orchestrator::run(orch, token.clone())),
            tokio::spawn(meshhook_executor::run(exec, token.clone())),
        ];
        Self { db, token, tasks }
    }

    async fn publish(&self, def: &Value) -> Version {
        meshhook_core::validate::validate(def).expect("valid");
        let mut tx = self.db.pool.begin().await.unwrap();
        let p = meshhook_db::workflows::create_project(&mut tx, "e2e")
            .await
            .unwrap();
        let wf = meshhook_db::workflows::create(&mut tx, p, "e2e", def)
            .await
            .unwrap();
        meshhook_db::workflows::publish(&mut tx, wf, None)
            .await
            .unwrap();
        let v = engine::latest_version(&mut tx, wf).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        v
    }

    async fn run(&self, v: &Version, body: Value) -> Uuid {
        let mut tx = self.db.pool.begin().await.unwrap();
        let trig = engine::trigger(body, json!({}), json!({}));
        let id = engine::start_run(&mut tx, v, trig, Origin::default(), Utc::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn finish(&self, run: Uuid) -> (String, Option<Value>, Option<Value>) {
        let start = Instant::now();
        loop {
            let row: (String, Option<Value>, Option<Value>) =
                sqlx::query_as("SELECT status, output, error FROM meshhook.runs WHERE id = $1")
                    .bind(run)
                    .fetch_one(&self.db.pool)
                    .await
                    .unwrap();
            if ["succeeded", "failed", "cancelled"].contains(&row.0.as_str()) {
                return row;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "run still {}",
                row.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn count(&self, run: Uuid, ty: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM meshhook.events WHERE run_id = $1 AND type = $2")
            .bind(run)
            .bind(ty)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.token.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

#[tokio::test]
async fn happy_path_transform_http_branch_terminate_output_is_exact() {
    let e = Engine::start().await;
    let (url, seen) = stub(vec![], None).await;
    let v = e.publish(&workflow(&url, 3)).await;
    let run = e.run(&v, json!({"user": {"id": 7, "name": "ada"}})).await;
    let (status, output, _) = e.finish(run).await;
    assert_eq!(status, "succeeded");
    assert_eq!(
        output,
        Some(json!({"user": {"id": 7, "name": "ada"}, "status": 200}))
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key, format!("{run}-call"));
    let mut conn = e.db.pool.acquire().await.unwrap();
    assert!(
        engine::replay_check(&mut conn, run)
            .await
            .unwrap()
            .deterministic
    );
    drop(conn);
    e.stop().await;
}

#[tokio::test]
async fn two_failures_then_success_take_three_attempts_with_one_key() {
    let e = Engine::start().await;
    let (url, seen) = stub(vec![500, 500], None).await;
    let v = e.publish(&workflow(&url, 5)).await;
    let run = e.run(&v, json!({"user": "u"})).await;
    let (status, output, _) = e.finish(run).await;
    assert_eq!(status, "succeeded");
    assert_eq!(output, Some(json!({"user": "u", "status": 200})));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "three attempts");
    assert!(
        seen.iter().all(|s| s.key == format!("{run}-call")),
        "one Idempotency-Key: {seen:?}"
    );
    assert_eq!(e.count(run, "http_attempt_failed").await, 2);
    assert_eq!(e.count(run, "http_responded").await, 1);
    let steps: Value = sqlx::query_scalar(
        "SELECT jsonb_agg(data ORDER BY seq) FROM meshhook.events WHERE run_id = $1 AND type = 'http_requested'",
    )
    .bind(run)
    .fetch_one(&e.db.pool)
    .await
    .unwrap();
    let attempts: Vec<u64> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    e.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let e = Engine::start().await;
    let (url, seen) = stub(vec![503], Some("1")).await;
    let v = e.publish(&workflow(&url, 3)).await;
    let run = e.run(&v, json!({"user": "u"})).await;
    let (status, _, _) = e.finish(run).await;
    assert_eq!(status, "succeeded");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "second attempt after {gap:?}, Retry-After says 1 s"
    );
    let delay: i64 = sqlx::query_scalar(
        "SELECT (data #>> '{retry,delay_ms}')::bigint FROM meshhook.events WHERE run_id = $1 AND type = 'http_attempt_failed'",
    )
    .bind(run)
    .fetch_one(&e.db.pool)
    .await
    .unwrap();
    assert!(delay >= 1000, "recorded delay {delay} ms");
    e.stop().await;
}

#[tokio::test]
async fn exhausted_retries_fail_the_run_into_the_dead_letter_view() {
    let e = Engine::start().await;
    let (url, seen) = stub(vec![500, 500, 500, 500], None).await;
    let v = e.publish(&workflow(&url, 3)).await;
    let run = e.run(&v, json!({"user": "u"})).await;
    let (status, _, error) = e.finish(run).await;
    assert_eq!(status, "failed");
    assert_eq!(seen.lock().unwrap().len(), 3, "max_attempts");
    let error = error.unwrap();
    assert_eq!(error["node_id"], "call");
    let mut conn = e.db.pool.acquire().await.unwrap();
    let dead = engine::dead_letters(&mut conn, v.project_id, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].run_id, run);
    assert_eq!(dead[0].last_step.as_deref(), Some("call"));
    let reason = dead[0].reason.clone().unwrap();
    assert!(reason.contains("500"), "reason names the failure: {reason}");
    drop(conn);
    e.stop().await;
}

#[tokio::test]
async fn resuming_from_the_http_step_calls_the_target_exactly_once_more() {
    let e = Engine::start().await;
    let (url, seen) = stub(vec![], None).await;
    let v = e.publish(&workflow(&url, 3)).await;
    let run = e.run(&v, json!({"user": "r"})).await;
    assert_eq!(e.finish(run).await.0, "succeeded");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let mut conn = e.db.pool.acquire().await.unwrap();
    let resumed = engine::resume(&mut conn, run, "call", Utc::now())
        .await
        .unwrap();
    drop(conn);
    let (status, output, _) = e.finish(resumed).await;
    assert_eq!(status, "succeeded");
    assert_eq!(output, Some(json!({"user": "r", "status": 200})));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "exactly one more call");
    assert_eq!(seen[1].key, format!("{resumed}-call"));
    // `pick` was copied from the parent, not re-run.
    // pick's events are copied from the parent; call, ok and done run anew.
    assert_eq!(e.count(resumed, "step_started").await, 4);
    // The copied history is part of the resumed run's creation: replay
    // finds every later decision where the log has it.
    let mut conn = e.db.pool.acquire().await.unwrap();
    let check = engine::replay_check(&mut conn, resumed).await.unwrap();
    assert!(check.deterministic, "{:?}", check.mismatches);
    drop(conn);
    e.stop().await;
}

//! Crash safety: the orchestrator and the executor as separate OS
//! processes, 300 runs, a random worker killed with SIGKILL every ~0.5 s and
//! restarted. Every run must still succeed, each step with exactly one
//! recorded result, gapless event sequences, and `meshhook replay` must
//! call every run deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Utc;
use meshhook_orchestrator::engine::{self, Origin};
use meshhook_system_tests::{Process, TestDb};
use rand::Rng;
use serde_json::{Value, json};

const RUNS: usize = 300;
const KEK: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The remote side: answers after 150 ms (so kills land mid-request) and
/// counts requests per Idempotency-Key.
async fn stub() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/work",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let s = s.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                *s.lock().unwrap().entry(key).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
                axum::Json(json!({"done": body.0["n"]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/work", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn worker(role: &str, db: &TestDb) -> Process {
    Process::start(
        &[role],
        &[
            ("DATABASE_URL", &db.url),
            ("MESHHOOK_KEK", KEK),
            ("MESHHOOK_EGRESS_ALLOWLIST", "127.0.0.1/32"),
            // Claimed work of a killed worker reappears quickly.
            ("MESHHOOK_QUEUE_VT_SECS", "2"),
            ("RUST_LOG", "warn"),
        ],
    )
    .expect("starting a worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_runs_survive_kill_9_of_random_workers() {
    let db = TestDb::new().await;
    let (url, seen) = stub().await;
    let definition = json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "{n: trigger.body.n}"}},
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": url, "body": {"n": "{{ steps.pick.n }}"}, "timeout_ms": 5000,
                "retry": {"max_attempts": 10, "base_ms": 100, "max_ms": 1000}}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "{n: steps.pick.n, remote: steps.call.body.done}"}}
        ],
        "edges": [{"from": "pick", "to": "call"}, {"from": "call", "to": "done"}]
    });
    meshhook_core::validate::validate(&definition).expect("valid");
    let mut tx = db.pool.begin().await.unwrap();
    let project = meshhook_db::workflows::create_project(&mut tx, "crash")
        .await
        .unwrap();
    let wf = meshhook_db::workflows::create(&mut tx, project, "crash", &definition)
        .await
        .unwrap();
    meshhook_db::workflows::publish(&mut tx, wf, None)
        .await
        .unwrap();
    let version = engine::latest_version(&mut tx, wf).await.unwrap().unwrap();
    tx.commit().await.unwrap();

    let mut workers = vec![worker("orchestrator", &db), worker("executor", &db)];
    let mut ids = Vec::new();
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(50) {
        let mut tx = db.pool.begin().await.unwrap();
        for n in chunk {
            let trigger = engine::trigger(json!({"n": n}), json!({}), json!({}));
            ids.push(
                engine::start_run(&mut tx, &version, trigger, Origin::default(), Utc::now())
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
    }

    let start = Instant::now();
    let mut kills = 0;
    loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.runs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "{open} runs unfinished after {:?} ({kills} kills)",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Kill a random worker while work remains, and restart it.
        if kills < 40 {
            let i = rand::rng().random_range(0..workers.len());
            let role = if i == 0 { "orchestrator" } else { "executor" };
            workers[i].child.kill().unwrap();
            workers[i].child.wait().unwrap();
            workers[i] = worker(role, &db);
            kills += 1;
        }
    }
    assert!(
        kills >= 3,
        "the test killed workers while runs were in flight ({kills})"
    );

    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM meshhook.runs GROUP BY 1")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![("succeeded".to_owned(), RUNS as i64)],
        "every run succeeded"
    );

    // Outputs are exact.
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.runs WHERE output <> jsonb_build_object('n', (trigger #> '{body,n}'), 'remote', (trigger #> '{body,n}'))",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "every output is exact");

    // Gapless, duplicate-free sequences matching last_seq.
    let bad_seq: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT r.id FROM meshhook.runs r JOIN meshhook.events e ON e.run_id = r.id
             GROUP BY r.id, r.last_seq
             HAVING count(*) <> r.last_seq OR count(DISTINCT e.seq) <> r.last_seq OR max(e.seq) <> r.last_seq
         ) s",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(bad_seq, 0, "sequences are gapless");

    // Exactly one result per step and per HTTP attempt.
    let dup_steps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT run_id, data ->> 'node_id' FROM meshhook.events
         WHERE type = 'step_succeeded' GROUP BY 1, 2 HAVING count(*) <> 1) s",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(dup_steps, 0, "each step succeeded exactly once");
    let steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meshhook.events WHERE type = 'step_succeeded'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(steps, 3 * RUNS as i64);
    let dup_results: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT run_id, data ->> 'node_id', data ->> 'attempt' FROM meshhook.events
         WHERE type IN ('http_responded', 'http_attempt_failed') GROUP BY 1, 2, 3 HAVING count(*) > 1) s",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(dup_results, 0, "one recorded result per HTTP attempt");

    // One Idempotency-Key per run's step, whatever the number of deliveries.
    let keys = seen.lock().unwrap().clone();
    assert_eq!(keys.len(), RUNS, "one key per run");
    for id in &ids {
        assert!(
            keys.contains_key(&format!("{id}-call")),
            "key {id}-call used"
        );
    }

    for w in &mut workers {
        let _ = w.terminate(Duration::from_secs(20)).await;
    }

    // `meshhook replay` calls every run deterministic.
    let mut args = vec!["replay".to_owned()];
    args.extend(ids.iter().map(ToString::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut replay = Process::start(&args, &[("DATABASE_URL", &db.url)]).unwrap();
    let status = replay.wait_exit(Duration::from_secs(120)).await.unwrap();
    let out = replay.output();
    assert!(status.success(), "{out}");
    assert_eq!(out.matches(": deterministic").count(), RUNS, "{out}");
    println!(
        "crash safety: {RUNS} runs succeeded through {kills} kill -9s in {:?}",
        start.elapsed()
    );
}

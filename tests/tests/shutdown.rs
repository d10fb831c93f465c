//! Graceful shutdown: SIGTERM the executor and the orchestrator while HTTP
//! calls are in flight (each run makes two calls in a row). The executor lets its in-flight calls finish and
//! records them before it exits 0; after a restart every run completes,
//! each remote call made exactly once — nothing lost, nothing repeated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Utc;
use meshhook_orchestrator::engine::{self, Origin};
use meshhook_system_tests::{Process, TestDb};
use serde_json::{Value, json};

const RUNS: usize = 24;
const KEK: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The remote side: answers after 1 s, counting calls per Idempotency-Key
/// (started and finished).
type Seen = Arc<Mutex<HashMap<String, (usize, usize)>>>;

async fn stub() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/slow",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let s = s.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                s.lock().unwrap().entry(key.clone()).or_default().0 += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                s.lock().unwrap().entry(key).or_default().1 += 1;
                axum::Json(json!({"done": body.0["n"]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
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
            ("MESHHOOK_SHUTDOWN_GRACE_SECS", "20"),
            ("PORT", &meshhook_system_tests::free_port().to_string()),
            ("RUST_LOG", "info"),
        ],
    )
    .expect("starting a worker")
}

async fn open_runs(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.runs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_finishes_in_flight_calls_and_loses_nothing() {
    let db = TestDb::new().await;
    let (url, seen) = stub().await;
    let definition = json!({
        "nodes": [
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": url, "body": {"n": "{{ trigger.body.n }}"},
                "timeout_ms": 10000, "retry": {"max_attempts": 3, "base_ms": 100, "max_ms": 1000}}},
            {"id": "again", "type": "http_call", "config": {"method": "POST", "url": url, "body": {"n": "{{ trigger.body.n }}"},
                "timeout_ms": 10000, "retry": {"max_attempts": 3, "base_ms": 100, "max_ms": 1000}}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "{n: trigger.body.n, remote: steps.again.body.done}"}}
        ],
        "edges": [{"from": "call", "to": "again"}, {"from": "again", "to": "done"}]
    });
    let mut tx = db.pool.begin().await.unwrap();
    let project = meshhook_db::workflows::create_project(&mut tx, "shutdown")
        .await
        .unwrap();
    let wf = meshhook_db::workflows::create(&mut tx, project, "shutdown", &definition)
        .await
        .unwrap();
    meshhook_db::workflows::publish(&mut tx, wf, None)
        .await
        .unwrap();
    let version = engine::latest_version(&mut tx, wf).await.unwrap().unwrap();
    for n in 0..RUNS {
        let trigger = engine::trigger(json!({"n": n}), json!({}), json!({}));
        engine::start_run(&mut tx, &version, trigger, Origin::default(), Utc::now())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut orchestrator = worker("orchestrator", &db);
    let mut executor = worker("executor", &db);
    // Wait until calls are in flight (started, not finished).
    let start = Instant::now();
    loop {
        let in_flight = seen.lock().unwrap().values().filter(|(s, f)| s > f).count();
        if in_flight > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no call started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = Instant::now();
    let status = executor.terminate(Duration::from_secs(25)).await.unwrap();
    assert!(
        status.success(),
        "executor exits 0 on SIGTERM: {}",
        executor.output()
    );
    // It waited for its calls (1 s each) instead of dropping them...
    let waited = term.elapsed();
    let unfinished = seen.lock().unwrap().values().filter(|(s, f)| s > f).count();
    assert_eq!(unfinished, 0, "no call is cut off by the shutdown");
    assert!(
        waited >= Duration::from_millis(300),
        "drained in {waited:?}"
    );
    assert!(
        executor.output().contains("executor draining"),
        "{}",
        executor.output()
    );
    // ...and recorded them: every finished call has its result in the log.
    let finished = seen.lock().unwrap().len();
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meshhook.events WHERE type = 'http_responded'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        usize::try_from(recorded).unwrap(),
        finished,
        "each call finished during the drain is recorded"
    );
    let status = orchestrator
        .terminate(Duration::from_secs(25))
        .await
        .unwrap();
    assert!(
        status.success(),
        "orchestrator exits 0: {}",
        orchestrator.output()
    );
    // The second calls need an executor: the runs wait mid-way.
    assert!(open_runs(&db).await > 0, "the shutdown came mid-run");

    // Restart: everything completes.
    let _orchestrator = worker("orchestrator", &db);
    let _executor = worker("executor", &db);
    let start = Instant::now();
    while open_runs(&db).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{} runs unfinished",
            open_runs(&db).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ok: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.runs WHERE status = 'succeeded'
           AND output = jsonb_build_object('n', trigger #> '{body,n}', 'remote', trigger #> '{body,n}')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        usize::try_from(ok).unwrap(),
        RUNS,
        "every run succeeded with its output"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2 * RUNS, "one key per run and step");
    for (key, (started, finished)) in &seen {
        assert_eq!(
            (*started, *finished),
            (1, 1),
            "{key} was called exactly once"
        );
    }
}

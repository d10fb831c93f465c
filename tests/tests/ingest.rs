//! Ingest durability: the real `meshhook api` process under concurrent
//! webhook deliveries is killed with SIGKILL mid-load and restarted. Every
//! delivery that got a 2xx must have its run in the database, and no run
//! may exist without its `run_created` event and its queue message (no
//! half-written run): the group committer answers only after its
//! transaction committed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshhook_system_tests::{Process, TestDb};
use serde_json::json;
use uuid::Uuid;

const KEK: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CLIENTS: usize = 16;

async fn api(db: &TestDb) -> Process {
    let mut p = Process::start(
        &["api"],
        &[
            ("DATABASE_URL", &db.url),
            ("MESHHOOK_KEK", KEK),
            (
                "MESHHOOK_JWT_SECRET",
                "system-test-jwt-secret-0123456789abcdef",
            ),
            ("RUST_LOG", "warn"),
        ],
    )
    .unwrap();
    p.wait_ready("/readyz", Duration::from_secs(30))
        .await
        .unwrap();
    p
}

#[tokio::test]
async fn every_acknowledged_delivery_survives_a_kill_9_and_no_run_is_half_written() {
    let db = TestDb::new().await;
    // One published workflow and an unsigned webhook, straight into the
    // database (the management API is tested elsewhere).
    let token = format!("wh_sys_{}", Uuid::new_v4().simple());
    let workflow = {
        let definition =
            json!({"nodes": [{"id": "done", "type": "terminate", "config": {}}], "edges": []});
        let mut tx = db.pool.begin().await.unwrap();
        let project = meshhook_db::workflows::create_project(&mut tx, "ingest")
            .await
            .unwrap();
        let wf = meshhook_db::workflows::create(&mut tx, project, "ingest", &definition)
            .await
            .unwrap();
        meshhook_db::workflows::publish(&mut tx, wf, None)
            .await
            .unwrap();
        let fields = meshhook_db::webhooks::Fields {
            verification: json!({"scheme": "none"}),
            signing_keys: json!([]),
            mode: json!("async"),
            rate_limit: None,
            payload_schema: None,
            max_body_bytes: 65536,
            enabled: true,
        };
        meshhook_db::webhooks::insert(&mut tx, Uuid::now_v7(), project, wf, &token, &fields)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        wf
    };

    let mut first = api(&db).await;
    let target = Arc::new(Mutex::new(format!("{}/hooks/{token}", first.base_url)));
    let acked: Arc<Mutex<Vec<(String, Uuid)>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (target, acked, failed, stop, client) = (
            target.clone(),
            acked.clone(),
            failed.clone(),
            stop.clone(),
            client.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("c{c}-{n}");
                let url = target.lock().unwrap().clone();
                let res = client
                    .post(url)
                    .header("idempotency-key", &key)
                    .json(&json!({"c": c, "n": n}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        let id = body["run_id"].as_str().unwrap().parse().unwrap();
                        acked.lock().unwrap().push((key, id));
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }

    // Load, then SIGKILL mid-load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().unwrap().len();
    assert!(
        before_kill > 50,
        "only {before_kill} deliveries accepted before the kill"
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Restart; the generator continues against the new process.
    let second = api(&db).await;
    *target.lock().unwrap() = format!("{}/hooks/{token}", second.base_url);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before_kill,
        "no delivery accepted after the restart"
    );
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "the kill interrupted nothing"
    );

    // Every acknowledged delivery has its run, with the same key.
    let rows: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, idempotency_key FROM meshhook.runs WHERE workflow_id = $1")
            .bind(workflow)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let runs: std::collections::HashMap<Uuid, Option<String>> = rows.into_iter().collect();
    for (key, id) in &acked {
        let stored = runs.get(id);
        assert!(
            stored.is_some(),
            "delivery {key} was acknowledged as run {id}, which does not exist"
        );
        assert_eq!(
            stored.unwrap().as_deref(),
            Some(format!("idempotency-key:{key}").as_str())
        );
    }

    // No half-written run: each has run_created (seq 1) and a wake-up
    // message (no orchestrator runs here, so none was consumed).
    let half: Vec<(Uuid, bool, bool)> = sqlx::query_as(
        "SELECT r.id,
                EXISTS (SELECT 1 FROM meshhook.events e WHERE e.run_id = r.id AND e.seq = 1 AND e.type = 'run_created'),
                EXISTS (SELECT 1 FROM meshhook.queue_messages q WHERE q.queue = 'orchestrator' AND q.message->>'run_id' = r.id::text)
         FROM meshhook.runs r WHERE r.workflow_id = $1",
    )
    .bind(workflow)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(half.len() >= acked.len());
    for &(id, created, queued) in &half {
        assert!(
            created && queued,
            "run {id}: run_created {created}, queue message {queued}"
        );
    }
    println!(
        "ingest durability: {} acknowledged, {} runs, {} failed requests around the kill",
        acked.len(),
        half.len(),
        failed.load(Ordering::Relaxed)
    );
}

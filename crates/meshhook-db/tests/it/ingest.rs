//! The one-statement webhook batch (`meshhook_db::ingest`).

use chrono::Utc;
use meshhook_core::event::Event;
use meshhook_db::ingest::{self, Lost, NewWebhookRun, Outcome};
use meshhook_db::testing::TestDb;
use meshhook_db::webhooks::{self, Fields, NewDelivery};
use serde_json::json;
use uuid::Uuid;

fn delivery(webhook: Uuid, project: Uuid, verdict: &'static str, status: i32) -> NewDelivery {
    NewDelivery {
        webhook_id: webhook,
        project_id: project,
        received_at: Utc::now(),
        verdict,
        status_code: status,
        run_id: None,
        dedupe_key: None,
        detail: None,
        latency_ms: 1.5,
        remote_addr: Some("127.0.0.1".into()),
    }
}

#[tokio::test]
async fn one_statement_stores_runs_events_wakeups_and_delivery_rows_and_dedupes() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let def = json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []});
    let project = meshhook_db::workflows::create_project(&mut conn, "p")
        .await
        .unwrap();
    let published = meshhook_db::workflows::create(&mut conn, project, "pub", &def)
        .await
        .unwrap();
    let (_, version) = meshhook_db::workflows::publish(&mut conn, published, None)
        .await
        .unwrap();
    let draft = meshhook_db::workflows::create(&mut conn, project, "draft", &def)
        .await
        .unwrap();
    let hook = Uuid::now_v7();
    let fields = Fields {
        verification: json!({"scheme": "none"}),
        signing_keys: json!([]),
        mode: json!("async"),
        rate_limit: None,
        payload_schema: None,
        max_body_bytes: 1024,
        enabled: true,
    };
    webhooks::insert(&mut conn, hook, project, published, "tok_ingest", &fields)
        .await
        .unwrap();
    drop(conn);

    let t1 = json!({"body": {"n": 1}, "headers": {}, "query": {}});
    let t2 = json!({"body": {"n": 2}, "headers": {}, "query": {}});
    let accepted = delivery(hook, project, "accepted", 202);
    let refused = delivery(hook, project, "bad_signature", 401);
    let run = |id, workflow_id, trigger, key| NewWebhookRun {
        id,
        project_id: project,
        workflow_id,
        webhook_id: hook,
        trigger,
        key,
        delivery: Some(&accepted),
    };
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let batch = [
        run(a, published, &t1, Some("k1")),
        // The same key again in the same batch: the first one wins.
        run(b, published, &t2, Some("k1")),
        run(c, published, &t2, None),
        run(d, draft, &t1, Some("k2")),
    ];
    let (outcomes, pending) =
        ingest::start_webhook_runs(&db.pool, &batch, std::slice::from_ref(&refused), Utc::now())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Started { version },
            Outcome::Duplicate,
            Outcome::Started { version },
            Outcome::NotPublished
        ]
    );
    assert!(!pending.is_empty(), "the inserted runs owe notifications");

    // The run_created events are what the engine reads back.
    for (id, trigger) in [(a, &t1), (c, &t2)] {
        let (ty, data): (String, serde_json::Value) =
            sqlx::query_as("SELECT type, data FROM meshhook.events WHERE run_id = $1 AND seq = 1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let event = meshhook_db::runs::event_from_parts(&ty, data).unwrap();
        assert_eq!(
            event,
            Event::RunCreated {
                run_id: id,
                workflow_id: published,
                version,
                trigger: trigger.clone(),
                timeout_ms: None,
                parent_run_id: None,
            }
        );
        let wakes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM meshhook.queue_messages WHERE queue = 'orchestrator' AND message->>'run_id' = $1",
        )
        .bind(id.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(wakes, 1);
        let (status, last_seq, key): (String, i64, Option<String>) = sqlx::query_as(
            "SELECT status::text, last_seq, idempotency_key FROM meshhook.runs WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!((status.as_str(), last_seq), ("queued", 1));
        assert_eq!(key.as_deref(), (id == a).then_some("k1"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.runs WHERE id = ANY($1)")
        .bind([b, d])
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "neither the duplicate nor the draft's run is stored"
    );

    // Delivery rows: the refusal, and the two acceptances whose run exists.
    let rows: Vec<(String, i32, Option<Uuid>)> = sqlx::query_as(
        "SELECT verdict, status_code, run_id FROM meshhook.webhook_deliveries WHERE webhook_id = $1 ORDER BY verdict, run_id",
    )
    .bind(hook)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut expected = vec![
        ("accepted".to_owned(), 202, Some(a)),
        ("accepted".to_owned(), 202, Some(c)),
        ("bad_signature".to_owned(), 401, None),
    ];
    expected.sort();
    assert_eq!(rows, expected);

    // The loser is resolved to the first run and logged as a duplicate.
    let winners = ingest::resolve_duplicates(
        &db.pool,
        &[
            Lost {
                webhook_id: hook,
                key: "k1",
                delivery: Some(&accepted),
            },
            Lost {
                webhook_id: hook,
                key: "never-seen",
                delivery: None,
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(winners, [Some(a), None]);
    let dup: (i32, Option<Uuid>) = sqlx::query_as(
        "SELECT status_code, run_id FROM meshhook.webhook_deliveries WHERE webhook_id = $1 AND verdict = 'duplicate'",
    )
    .bind(hook)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(dup, (200, Some(a)));

    // A later batch with a known key starts nothing.
    let again = [run(Uuid::now_v7(), published, &t1, Some("k1"))];
    let (outcomes, _) = ingest::start_webhook_runs(&db.pool, &again, &[], Utc::now())
        .await
        .unwrap();
    assert_eq!(outcomes, [Outcome::Duplicate]);

    // A deleted workflow's deliveries are refused, not orphaned.
    sqlx::query("DELETE FROM meshhook.workflows WHERE id = $1")
        .bind(published)
        .execute(&db.pool)
        .await
        .unwrap();
    let late = [run(Uuid::now_v7(), published, &t1, Some("k9"))];
    let (outcomes, _) = ingest::start_webhook_runs(&db.pool, &late, &[], Utc::now())
        .await
        .unwrap();
    assert_eq!(outcomes, [Outcome::NotPublished]);
}

#[tokio::test]
async fn the_batch_sends_no_notification_inside_its_commit() {
    // The statement silences the triggers (the caller notifies after the
    // commit); a listener must hear nothing from the batch itself.
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let def = json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []});
    let project = meshhook_db::workflows::create_project(&mut conn, "p")
        .await
        .unwrap();
    let wf = meshhook_db::workflows::create(&mut conn, project, "w", &def)
        .await
        .unwrap();
    meshhook_db::workflows::publish(&mut conn, wf, None)
        .await
        .unwrap();
    drop(conn);
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen_all(["meshhook_queue", "meshhook_events"])
        .await
        .unwrap();
    let trigger = json!({"body": {}, "headers": {}, "query": {}});
    let batch = [NewWebhookRun {
        id: Uuid::now_v7(),
        project_id: project,
        workflow_id: wf,
        webhook_id: Uuid::now_v7(),
        trigger: &trigger,
        key: None,
        delivery: None,
    }];
    let (outcomes, pending) = ingest::start_webhook_runs(&db.pool, &batch, &[], Utc::now())
        .await
        .unwrap();
    assert!(matches!(outcomes[..], [Outcome::Started { .. }]));
    let heard = tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
    assert!(
        heard.is_err(),
        "the batch notified inside its transaction: {heard:?}"
    );
    pending.send(&db.pool).await.unwrap();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("the deferred notifications arrive")
        .unwrap();
    assert!(["meshhook_queue", "meshhook_events"].contains(&n.channel()));
}

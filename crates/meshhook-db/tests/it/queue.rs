use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshhook_db::queue;
use meshhook_db::testing::TestDb;
use serde_json::json;

#[tokio::test]
async fn twenty_thousand_messages_eight_consumers_each_processed_exactly_once() {
    let db = TestDb::new().await;
    queue::create(&db.pool, "work", 5).await.unwrap();
    const N: usize = 20_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let msgs: Vec<_> = chunk.iter().map(|i| json!({ "i": i })).collect();
        queue::send_batch(&db.pool, "work", &msgs, Duration::ZERO)
            .await
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::<i64>::with_capacity(N)));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (pool, seen) = (db.pool.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let mut tx = pool.begin().await.unwrap();
                let msgs = queue::read(&mut *tx, "work", Duration::from_secs(60), 100)
                    .await
                    .unwrap();
                if msgs.is_empty() {
                    tx.commit().await.unwrap();
                    return;
                }
                let ids: Vec<i64> = msgs
                    .iter()
                    .map(|m| m.message["i"].as_i64().unwrap())
                    .collect();
                let msg_ids: Vec<i64> = msgs.iter().map(|m| m.msg_id).collect();
                assert_eq!(
                    queue::delete_batch(&mut *tx, "work", &msg_ids)
                        .await
                        .unwrap(),
                    msgs.len() as u64
                );
                tx.commit().await.unwrap();
                seen.lock().unwrap().extend(ids);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), N, "every message processed once, none twice");
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), N, "no message processed twice");
    assert_eq!(queue::depth(&db.pool, "work").await.unwrap(), 0);
}

#[tokio::test]
async fn unacked_message_reappears_after_its_visibility_timeout() {
    let db = TestDb::new().await;
    let id = queue::send(&db.pool, "executor", &json!({"job": 1}), Duration::ZERO)
        .await
        .unwrap();
    let first = queue::read(&db.pool, "executor", Duration::from_millis(400), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].msg_id, id);
    assert_eq!(first[0].read_ct, 1);
    assert!(
        queue::read(&db.pool, "executor", Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "invisible while claimed"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = queue::read(&db.pool, "executor", Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].msg_id, id);
    assert_eq!(again[0].read_ct, 2);
}

#[tokio::test]
async fn delayed_message_is_invisible_until_due() {
    let db = TestDb::new().await;
    let sent = Instant::now();
    queue::send(
        &db.pool,
        "orchestrator",
        &json!({"wake": true}),
        Duration::from_millis(800),
    )
    .await
    .unwrap();
    assert!(
        queue::read(&db.pool, "orchestrator", Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due_in = queue::next_visible_in(&db.pool, "orchestrator")
        .await
        .unwrap()
        .unwrap();
    assert!(
        due_in <= Duration::from_millis(800) && due_in > Duration::from_millis(300),
        "{due_in:?}"
    );
    loop {
        let got = queue::read(&db.pool, "orchestrator", Duration::from_secs(30), 10)
            .await
            .unwrap();
        if !got.is_empty() {
            assert!(
                sent.elapsed() >= Duration::from_millis(800),
                "visible after {:?}",
                sent.elapsed()
            );
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "never became visible"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn message_moves_to_dead_letters_after_max_reads() {
    let db = TestDb::new().await;
    queue::create(&db.pool, "fragile", 2).await.unwrap();
    let id = queue::send(
        &db.pool,
        "fragile",
        &json!({"poison": true}),
        Duration::ZERO,
    )
    .await
    .unwrap();
    for expected in 1..=2 {
        let got = queue::read(&db.pool, "fragile", Duration::ZERO, 1)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].read_ct, expected);
    }
    // Third read: the message has been read max_reads times without an ack.
    assert!(
        queue::read(&db.pool, "fragile", Duration::ZERO, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue::depth(&db.pool, "fragile").await.unwrap(), 0);
    let (dead_id, read_ct, msg): (i64, i32, serde_json::Value) = sqlx::query_as(
        "SELECT msg_id, read_ct, message FROM meshhook.queue_dead_letters WHERE queue = 'fragile'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((dead_id, read_ct, msg), (id, 2, json!({"poison": true})));
    let m = queue::metrics(&db.pool).await.unwrap();
    assert_eq!(m.iter().find(|m| m.queue == "fragile").unwrap().dead, 1);
}

#[tokio::test]
async fn enqueue_in_a_rolled_back_transaction_leaves_nothing() {
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    queue::send(&mut *tx, "executor", &json!({"a": 1}), Duration::ZERO)
        .await
        .unwrap();
    queue::send_batch(&mut *tx, "executor", &[json!(1), json!(2)], Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        queue::depth(&mut *tx, "executor").await.unwrap(),
        3,
        "visible inside the transaction"
    );
    tx.rollback().await.unwrap();
    assert_eq!(queue::depth(&db.pool, "executor").await.unwrap(), 0);
    assert!(
        queue::read(&db.pool, "executor", Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn notify_wakes_an_idle_reader_in_under_50_ms() {
    let db = TestDb::new().await;
    let waker = queue::Waker::start(&db.pool).await.unwrap();
    // Warm up: the listener is connected once a notification round-trips.
    queue::send(&db.pool, "orchestrator", &json!("warm"), Duration::ZERO)
        .await
        .unwrap();
    waker.wait("orchestrator", Duration::from_secs(5)).await;
    queue::read(&db.pool, "orchestrator", Duration::from_secs(30), 10)
        .await
        .unwrap();

    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let pool = db.pool.clone();
        let waiter = {
            let waker = waker.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                waker.wait("orchestrator", Duration::from_secs(5)).await;
                t
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await; // reader is idle, waiting
        let sent = Instant::now();
        queue::send(&pool, "orchestrator", &json!("go"), Duration::ZERO)
            .await
            .unwrap();
        waiter.await.unwrap();
        let latency = sent.elapsed();
        worst = worst.max(latency);
        let got = queue::read(&pool, "orchestrator", Duration::from_secs(30), 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }
    assert!(
        worst < Duration::from_millis(50),
        "worst wake-up latency {worst:?}"
    );
}

#[tokio::test]
async fn archive_set_vt_and_metrics() {
    let db = TestDb::new().await;
    let a = queue::send(&db.pool, "executor", &json!("a"), Duration::ZERO)
        .await
        .unwrap();
    let b = queue::send(&db.pool, "executor", &json!("b"), Duration::ZERO)
        .await
        .unwrap();
    assert!(queue::archive(&db.pool, "executor", a).await.unwrap());
    assert!(
        !queue::archive(&db.pool, "executor", a).await.unwrap(),
        "archiving twice finds nothing"
    );
    let archived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meshhook.queue_archive WHERE msg_id = $1")
            .bind(a)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(archived, 1);
    assert!(
        queue::set_vt(&db.pool, "executor", b, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        queue::read(&db.pool, "executor", Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let m = queue::metrics(&db.pool).await.unwrap();
    let ex = m.iter().find(|m| m.queue == "executor").unwrap();
    assert_eq!((ex.depth, ex.visible), (1, 0));
    assert!(
        queue::oldest_age(&db.pool, "executor")
            .await
            .unwrap()
            .is_some()
    );
    assert!(queue::delete(&db.pool, "executor", b).await.unwrap());
    assert!(!queue::delete(&db.pool, "executor", b).await.unwrap());
    assert_eq!(queue::oldest_age(&db.pool, "executor").await.unwrap(), None);
}

#[tokio::test]
async fn sending_to_an_unknown_queue_is_a_clear_error() {
    let db = TestDb::new().await;
    let err = queue::send(&db.pool, "nope", &json!(1), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(err, meshhook_db::Error::UnknownQueue(ref q) if q == "nope"),
        "{err}"
    );
}

#[tokio::test]
async fn claim_relaxes_only_its_own_commit() {
    let db = TestDb::new().await;
    // One connection, so the claim and the checks below share a session.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    // (The test cluster runs with synchronous_commit off; turn it on for
    // this session so a leak would show.)
    sqlx::query("SET synchronous_commit = on")
        .execute(&pool)
        .await
        .unwrap();
    let id = queue::send(&pool, "executor", &json!({"job": 1}), Duration::ZERO)
        .await
        .unwrap();
    let claimed = queue::claim(&pool, "executor", Duration::from_millis(300), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].msg_id, claimed[0].read_ct), (id, 1));
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        setting, "on",
        "the relaxed commit does not outlive the claim"
    );
    assert!(
        queue::claim(&pool, "executor", Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "invisible while claimed"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = queue::claim(&pool, "executor", Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!((again[0].msg_id, again[0].read_ct), (id, 2));
}

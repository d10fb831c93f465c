//! `meshhook bench ingest`, briefly, as a user runs it: the binary against
//! a fresh database, its last line one JSON object whose figures agree with
//! each other and with what it stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshhook_system_tests::{Process, TestDb};
use serde_json::Value;

/// A second of load on a few connections, a second of ceiling.
const BRIEF: [&str; 6] = [
    "--concurrency",
    "4",
    "--seconds",
    "1",
    "--ceiling-seconds",
    "1",
];

/// Runs `meshhook bench ingest <args> <BRIEF>` to completion and returns
/// its output and the parsed last line.
async fn bench(db: &TestDb, args: &[&str]) -> (String, Value) {
    let mut argv = vec!["bench", "ingest"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&BRIEF);
    let mut p = Process::start(&argv, &[("DATABASE_URL", &db.url)]).unwrap();
    let status = p.wait_exit(Duration::from_secs(120)).await.unwrap();
    let out = p.output();
    assert!(status.success(), "meshhook bench failed:\n{out}");
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in:\n{out}"));
    let json: Value = serde_json::from_str(last).unwrap();
    (out, json)
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[tokio::test]
async fn ingest_prints_accepted_rate_latency_and_ceiling_as_json() {
    let db = TestDb::new().await;
    let (out, j) = bench(&db, &[]).await;
    assert_eq!(j["bench"], "ingest", "{out}");
    let (accepted, ceiling) = (num(&j, "accepted_per_s"), num(&j, "ceiling_commits_per_s"));
    assert!(accepted > 0.0 && ceiling > 0.0, "{out}");
    let (p50, p99) = (num(&j, "p50_ms"), num(&j, "p99_ms"));
    assert!(0.0 < p50 && p50 <= p99, "{out}");
    let ratio = num(&j, "ratio");
    assert!(
        (ratio - accepted / ceiling).abs() <= 0.01,
        "ratio {ratio} is not {accepted} / {ceiling}:\n{out}"
    );
    assert!(out.contains("group commit:"), "{out}");

    // Every accepted delivery is a run with its first event and its
    // orchestrator wake-up.
    let (runs, events, wakeups): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM meshhook.runs WHERE trigger->'body' ? 'client'),
                (SELECT count(*) FROM meshhook.events e JOIN meshhook.runs r ON r.id = e.run_id
                  WHERE e.seq = 1 AND e.type = 'run_created' AND r.trigger->'body' ? 'client'),
                (SELECT count(*) FROM meshhook.queue_messages q JOIN meshhook.runs r
                  ON r.id = (q.message->>'run_id')::uuid WHERE r.trigger->'body' ? 'client')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(runs as f64 >= accepted * 0.5, "{runs} runs:\n{out}");
    assert_eq!((events, wakeups), (runs, runs), "{out}");
}

#[tokio::test]
async fn ingest_store_only_prints_the_database_side_alone() {
    let db = TestDb::new().await;
    let (out, j) = bench(&db, &["--store-only", "--batch", "8"]).await;
    assert_eq!(j["bench"], "ingest_store_only", "{out}");
    assert_eq!(j["batch"], 8, "{out}");
    assert_eq!(
        j["writers"], 3,
        "the group committer's default slots:\n{out}"
    );
    let (stored, ceiling) = (
        num(&j, "deliveries_per_s"),
        num(&j, "ceiling_commits_per_s"),
    );
    assert!(stored > 0.0 && ceiling > 0.0, "{out}");
    assert!((num(&j, "ratio") - stored / ceiling).abs() <= 0.01, "{out}");
    // Whole batches, each a run, its first event, its wake-up and its
    // delivery-log row.
    let (runs, events, wakeups, logged): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM meshhook.runs),
                (SELECT count(*) FROM meshhook.events WHERE seq = 1 AND type = 'run_created'),
                (SELECT count(*) FROM meshhook.queue_messages),
                (SELECT count(*) FROM meshhook.webhook_deliveries WHERE verdict = 'accepted' AND run_id IS NOT NULL)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(runs > 0 && runs % 8 == 0, "{runs} runs:\n{out}");
    assert_eq!((events, wakeups, logged), (runs, runs, runs), "{out}");
}

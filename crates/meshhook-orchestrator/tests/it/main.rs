//! Orchestrator integration tests: real PostgreSQL, the worker running
//! in-process; pure nodes, delays, cancellation, replay, resume.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use meshhook_db::testing::TestDb;
use meshhook_orchestrator::engine::{self, Origin, Version};
use meshhook_orchestrator::{Context, Options};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A project, a workflow and its published v1 with `definition`.
async fn publish(pool: &sqlx::PgPool, definition: Value) -> Version {
    let project: Uuid =
        sqlx::query_scalar("INSERT INTO meshhook.projects (name) VALUES ('p') RETURNING id")
            .fetch_one(pool)
            .await
            .unwrap();
    let workflow: Uuid = sqlx::query_scalar(
        "INSERT INTO meshhook.workflows (project_id, name, definition) VALUES ($1, 'wf', $2) RETURNING id",
    )
    .bind(project)
    .bind(&definition)
    .fetch_one(pool)
    .await
    .unwrap();
    meshhook_core::validate::validate(&definition).expect("valid test definition");
    sqlx::query_as(
        "INSERT INTO meshhook.workflow_versions (workflow_id, project_id, version, definition, content_hash)
         VALUES ($1, $2, 1, $3, md5($3::text)) RETURNING id, workflow_id, project_id, version, definition",
    )
    .bind(workflow)
    .bind(project)
    .bind(&definition)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn start(pool: &sqlx::PgPool, v: &Version, body: Value) -> Uuid {
    let mut tx = pool.begin().await.unwrap();
    let id = engine::start_run(
        &mut tx,
        v,
        engine::trigger(body, json!({}), json!({})),
        Origin {
            kind: Some("manual"),
            ..Origin::default()
        },
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn spawn_orchestrator(pool: &sqlx::PgPool) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let mut ctx = Context::new(pool.clone());
    ctx.options = Options {
        poll: Duration::from_millis(200),
        ..Options::default()
    };
    let handle = tokio::spawn(meshhook_orchestrator::run(ctx, token.clone()));
    (token, handle)
}

async fn wait_status(
    pool: &sqlx::PgPool,
    run: Uuid,
    want: &[&str],
    timeout: Duration,
) -> (String, Option<Value>, Option<Value>) {
    let start = Instant::now();
    loop {
        let row: (String, Option<Value>, Option<Value>) =
            sqlx::query_as("SELECT status, output, error FROM meshhook.runs WHERE id = $1")
                .bind(run)
                .fetch_one(pool)
                .await
                .unwrap();
        if want.contains(&row.0.as_str()) {
            return row;
        }
        assert!(
            start.elapsed() < timeout,
            "run {run} still {} after {timeout:?}",
            row.0
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn event_types(pool: &sqlx::PgPool, run: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT type FROM meshhook.events WHERE run_id = $1 ORDER BY seq")
        .bind(run)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn assert_gapless(pool: &sqlx::PgPool, run: Uuid) {
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM meshhook.events WHERE run_id = $1 ORDER BY seq")
            .bind(run)
            .fetch_all(pool)
            .await
            .unwrap();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "gapless, no duplicates");
    let last: i64 = sqlx::query_scalar("SELECT last_seq FROM meshhook.runs WHERE id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(last, seqs.len() as i64);
}

#[tokio::test]
async fn pure_chain_with_branch_completes_with_the_exact_output() {
    let db = TestDb::new().await;
    let v = publish(
        &db.pool,
        json!({
            "nodes": [
                {"id": "pick", "type": "transform", "config": {"expression": "{name: trigger.body.user.name, n: length(trigger.body.items)}"}},
                {"id": "big", "type": "branch", "config": {"condition": "steps.pick.n > `2`"}},
                {"id": "yes", "type": "terminate", "config": {"status": "succeeded", "output": "{greeting: join(' ', ['hello', steps.pick.name]), count: steps.pick.n}"}},
                {"id": "no", "type": "terminate", "config": {"status": "failed", "output": "{too_small: steps.pick.n}"}}
            ],
            "edges": [
                {"from": "pick", "to": "big"},
                {"from": "big", "to": "yes", "label": "true"},
                {"from": "big", "to": "no", "label": "false"}
            ]
        }),
    )
    .await;
    let (token, handle) = spawn_orchestrator(&db.pool);
    let ok = start(
        &db.pool,
        &v,
        json!({"user": {"name": "ada"}, "items": [1, 2, 3]}),
    )
    .await;
    let small = start(&db.pool, &v, json!({"user": {"name": "bob"}, "items": [1]})).await;
    let (status, output, _) = wait_status(
        &db.pool,
        ok,
        &["succeeded", "failed"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status, "succeeded");
    assert_eq!(output, Some(json!({"greeting": "hello ada", "count": 3})));
    let (status, _, error) = wait_status(
        &db.pool,
        small,
        &["succeeded", "failed"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status, "failed");
    assert!(
        error.unwrap()["message"].as_str().unwrap().contains("no"),
        "names the terminate node"
    );
    for run in [ok, small] {
        assert_gapless(&db.pool, run).await;
        let mut conn = db.pool.acquire().await.unwrap();
        let check = engine::replay_check(&mut conn, run).await.unwrap();
        assert!(check.deterministic, "{:?}", check.mismatches);
    }
    let types = event_types(&db.pool, ok).await;
    assert_eq!(types.first().map(String::as_str), Some("run_created"));
    assert_eq!(types.last().map(String::as_str), Some("run_succeeded"));
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_one_second_delay_survives_an_orchestrator_restart() {
    let db = TestDb::new().await;
    let v = publish(
        &db.pool,
        json!({
            "nodes": [
                {"id": "wait", "type": "delay", "config": {"duration_ms": 1000}},
                {"id": "done", "type": "transform", "config": {"expression": "trigger.body"}}
            ],
            "edges": [{"from": "wait", "to": "done"}]
        }),
    )
    .await;
    let (token, handle) = spawn_orchestrator(&db.pool);
    let started = Instant::now();
    let run = start(&db.pool, &v, json!({"x": 1})).await;
    wait_status(
        &db.pool,
        run,
        &["waiting", "running"],
        Duration::from_secs(5),
    )
    .await;
    // Let the first pass record the delay, then stop the orchestrator.
    let start_wait = Instant::now();
    while !event_types(&db.pool, run)
        .await
        .iter()
        .any(|t| t == "delay_scheduled")
    {
        assert!(start_wait.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    handle.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _): (String, Option<Value>, Option<Value>) =
        sqlx::query_as("SELECT status, output, error FROM meshhook.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_ne!(
        status, "succeeded",
        "nothing runs while no orchestrator is up"
    );
    // A new orchestrator (a restart) picks the timer up.
    let (token, handle) = spawn_orchestrator(&db.pool);
    let (status, output, _) = wait_status(
        &db.pool,
        run,
        &["succeeded", "failed"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status, "succeeded");
    assert_eq!(output, Some(json!({"x": 1})));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "completed after {:?}",
        started.elapsed()
    );
    let types = event_types(&db.pool, run).await;
    assert!(types.contains(&"timer_fired".to_owned()), "{types:?}");
    assert_gapless(&db.pool, run).await;
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn cancel_stops_a_waiting_run() {
    let db = TestDb::new().await;
    let v = publish(
        &db.pool,
        json!({
            "nodes": [
                {"id": "wait", "type": "delay", "config": {"duration_ms": 60000}},
                {"id": "done", "type": "transform", "config": {"expression": "trigger.body"}}
            ],
            "edges": [{"from": "wait", "to": "done"}]
        }),
    )
    .await;
    let (token, handle) = spawn_orchestrator(&db.pool);
    let run = start(&db.pool, &v, json!({})).await;
    wait_status(&db.pool, run, &["waiting"], Duration::from_secs(5)).await;
    let mut conn = db.pool.acquire().await.unwrap();
    engine::cancel(&mut conn, run, Some("test".into()), Utc::now())
        .await
        .unwrap();
    let (status, _, _) = wait_status(&db.pool, run, &["cancelled"], Duration::from_secs(5)).await;
    assert_eq!(status, "cancelled");
    let again = engine::cancel(&mut conn, run, None, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(again, engine::Error::Finished(_)), "{again}");
    assert_gapless(&db.pool, run).await;
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_run_whose_version_is_missing_fails_cleanly() {
    let db = TestDb::new().await;
    let v = publish(
        &db.pool,
        json!({"nodes": [{"id": "a", "type": "transform", "config": {"expression": "trigger.body"}}], "edges": []}),
    )
    .await;
    let run = start(&db.pool, &v, json!({})).await;
    sqlx::query("DELETE FROM meshhook.workflow_versions WHERE id = $1")
        .bind(v.id)
        .execute(&db.pool)
        .await
        .unwrap();
    let (token, handle) = spawn_orchestrator(&db.pool);
    let (status, _, error) = wait_status(
        &db.pool,
        run,
        &["failed", "succeeded"],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status, "failed");
    assert!(
        error.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
    assert_eq!(
        event_types(&db.pool, run).await,
        vec!["run_created", "run_failed"]
    );
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn test_run_of_a_draft_and_resume_from_a_step() {
    let db = TestDb::new().await;
    let def = json!({
        "nodes": [
            {"id": "a", "type": "transform", "config": {"expression": "trigger.body.n"}},
            {"id": "b", "type": "transform", "config": {"expression": "sum([steps.a, `1`])"}},
            {"id": "c", "type": "terminate", "config": {"status": "succeeded", "output": "{a: steps.a, b: steps.b}"}}
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
    });
    let v = publish(&db.pool, def).await;
    let (token, handle) = spawn_orchestrator(&db.pool);

    let mut conn = db.pool.acquire().await.unwrap();
    let test = engine::test_run(
        &mut conn,
        v.workflow_id,
        engine::trigger(json!({"n": 41}), json!({}), json!({})),
        Utc::now(),
    )
    .await
    .unwrap();
    let (status, output, _) = wait_status(
        &db.pool,
        test,
        &["succeeded", "failed"],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        (status.as_str(), output),
        ("succeeded", Some(json!({"a": 41, "b": 42})))
    );

    let resumed = engine::resume(&mut conn, test, "b", Utc::now())
        .await
        .unwrap();
    let (status, output, _) = wait_status(
        &db.pool,
        resumed,
        &["succeeded", "failed"],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        (status.as_str(), output),
        ("succeeded", Some(json!({"a": 41, "b": 42})))
    );
    let parent: Option<Uuid> =
        sqlx::query_scalar("SELECT parent_run_id FROM meshhook.runs WHERE id = $1")
            .bind(resumed)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(parent, Some(test));
    // `a` was copied, not re-executed: exactly one step_started for it.
    let started_a: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.events WHERE run_id = $1 AND type = 'step_started' AND data ->> 'node_id' = 'a'",
    )
    .bind(resumed)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(started_a, 1);
    assert_gapless(&db.pool, resumed).await;
    let err = engine::resume(&mut conn, test, "nope", Utc::now())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    token.cancel();
    handle.await.unwrap();
}

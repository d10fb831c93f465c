//! Per-project retention: batched deletes and partition drops.

use meshhook_db::retention::{self, Options};
use meshhook_db::testing::TestDb;
use serde_json::json;
use uuid::Uuid;

/// A run of `project` created and finished `age_days` ago with `status`,
/// with two events stamped `at`.
async fn run(
    pool: &sqlx::PgPool,
    project: Uuid,
    workflow: Uuid,
    status: &str,
    age_days: i32,
    at: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    let finished = matches!(status, "succeeded" | "failed" | "cancelled");
    sqlx::query(
        "INSERT INTO meshhook.runs (id, project_id, workflow_id, trigger_kind, trigger, status, last_seq,
                                    created_at, updated_at, finished_at)
         VALUES ($1, $2, $3, 'test', '{}', $4, 2, now() - make_interval(days => $5), now(),
                 CASE WHEN $6 THEN now() - make_interval(days => $5) END)",
    )
    .bind(id)
    .bind(project)
    .bind(workflow)
    .bind(status)
    .bind(age_days)
    .bind(finished)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at)
         SELECT $1, s, $2, 'step_started', '{}', $3::timestamptz FROM generate_series(1, 2) s",
    )
    .bind(id)
    .bind(project)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn exists(pool: &sqlx::PgPool, id: Uuid) -> (bool, i64) {
    let run: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM meshhook.runs WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.events WHERE run_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    (run, events)
}

#[tokio::test]
async fn prune_keeps_each_projects_window_and_unfinished_runs_and_drops_spent_partitions() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let mut conn = pool.acquire().await.unwrap();
    let def = json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []});
    let short = meshhook_db::workflows::create_project(&mut conn, "short")
        .await
        .unwrap();
    let long = meshhook_db::workflows::create_project(&mut conn, "long")
        .await
        .unwrap();
    assert!(
        meshhook_db::projects::set_retention(&mut conn, short, 7)
            .await
            .unwrap()
    );
    assert!(
        meshhook_db::projects::set_retention(&mut conn, long, 90)
            .await
            .unwrap()
    );
    let wf_short = meshhook_db::workflows::create(&mut conn, short, "w", &def)
        .await
        .unwrap();
    let wf_long = meshhook_db::workflows::create(&mut conn, long, "w", &def)
        .await
        .unwrap();
    // Two old monthly partitions (far in the past) next to the current ones.
    sqlx::raw_sql(
        "CREATE TABLE meshhook.events_2001_01 PARTITION OF meshhook.events FOR VALUES FROM ('2001-01-01') TO ('2001-02-01');
         CREATE TABLE meshhook.events_2001_02 PARTITION OF meshhook.events FOR VALUES FROM ('2001-02-01') TO ('2001-03-01');",
    )
    .execute(pool)
    .await
    .unwrap();
    drop(conn);

    let today = chrono::Utc::now().to_rfc3339();
    // Short project (7 days): an old finished run goes, a recent one stays,
    // an old one still waiting on a delay stays.
    let old_done = run(pool, short, wf_short, "succeeded", 10, &today).await;
    let old_failed = run(pool, short, wf_short, "failed", 8, &today).await;
    let recent = run(pool, short, wf_short, "succeeded", 2, &today).await;
    let waiting = run(pool, short, wf_short, "waiting", 40, &today).await;
    // Long project (90 days): a 10-day-old run stays.
    let kept = run(pool, long, wf_long, "succeeded", 10, &today).await;
    // Partition 2001-01 holds only finished runs' events -> dropped;
    // 2001-02 holds an event of an unfinished run -> kept.
    let ancient = run(
        pool,
        long,
        wf_long,
        "succeeded",
        9000,
        "2001-01-15T00:00:00Z",
    )
    .await;
    let ancient_waiting = run(pool, long, wf_long, "waiting", 9000, "2001-02-15T00:00:00Z").await;
    // Delivery-log rows: one old and one new per project.
    for (project, hook_age) in [(short, 10), (short, 1), (long, 10), (long, 1)] {
        sqlx::query(
            "INSERT INTO meshhook.webhook_deliveries (webhook_id, project_id, received_at, verdict, status_code)
             VALUES ($1, $2, now() - make_interval(days => $3), 'accepted', 202)",
        )
        .bind(Uuid::now_v7())
        .bind(project)
        .bind(hook_age)
        .execute(pool)
        .await
        .unwrap();
    }

    // Small batches: the loop must go round more than once.
    let report = retention::prune(
        pool,
        Options {
            batch: 1,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert!(report.ran);
    // 2 runs of the short project + the ancient finished one (past 90 days).
    assert_eq!(report.runs, 3, "{report:?}");
    assert_eq!(report.events, 6, "{report:?}");
    assert_eq!(report.deliveries, 1, "{report:?}");
    assert_eq!(
        report.partitions,
        ["events_2001_01".to_owned()],
        "{report:?}"
    );

    assert_eq!(exists(pool, old_done).await, (false, 0));
    assert_eq!(exists(pool, old_failed).await, (false, 0));
    assert_eq!(exists(pool, ancient).await, (false, 0));
    for id in [recent, waiting, kept, ancient_waiting] {
        assert_eq!(exists(pool, id).await, (true, 2), "run {id} is kept whole");
    }
    let deliveries: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT project_id, count(*) FROM meshhook.webhook_deliveries GROUP BY 1 ORDER BY 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let count = |p: Uuid| deliveries.iter().find(|(x, _)| *x == p).map(|(_, n)| *n);
    assert_eq!(count(short), Some(1));
    assert_eq!(count(long), Some(2));

    // A second pass has nothing left to do; once the waiting run finishes
    // (and is itself past retention), its partition goes too.
    let again = retention::prune(pool, Options::default()).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    sqlx::query("UPDATE meshhook.runs SET status = 'succeeded', finished_at = now() - interval '100 days' WHERE id = $1")
        .bind(ancient_waiting)
        .execute(pool)
        .await
        .unwrap();
    let last = retention::prune(pool, Options::default()).await.unwrap();
    assert_eq!(last.runs, 1);
    assert_eq!(last.partitions, ["events_2001_02".to_owned()]);
}

#[tokio::test]
async fn only_one_pruner_runs_at_a_time() {
    let db = TestDb::new().await;
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(x'6d6872657461696e'::bigint)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let report = retention::prune(&db.pool, Options::default())
        .await
        .unwrap();
    assert!(!report.ran, "a second pruner returns at once");
    sqlx::query("SELECT pg_advisory_unlock(x'6d6872657461696e'::bigint)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let report = retention::prune(&db.pool, Options::default())
        .await
        .unwrap();
    assert!(report.ran);
}

#[tokio::test]
async fn events_of_runs_deleted_with_their_workflow_or_project_go_with_the_next_pass() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let mut conn = pool.acquire().await.unwrap();
    let def = json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []});
    let project = meshhook_db::workflows::create_project(&mut conn, "p")
        .await
        .unwrap();
    let doomed = meshhook_db::workflows::create(&mut conn, project, "doomed", &def)
        .await
        .unwrap();
    let kept = meshhook_db::workflows::create(&mut conn, project, "kept", &def)
        .await
        .unwrap();
    let other = meshhook_db::workflows::create_project(&mut conn, "other")
        .await
        .unwrap();
    let other_wf = meshhook_db::workflows::create(&mut conn, other, "w", &def)
        .await
        .unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    // Recent and unfinished runs too: retention would keep them, the
    // delete does not.
    let gone_a = run(pool, project, doomed, "succeeded", 0, &now).await;
    let gone_b = run(pool, project, doomed, "running", 0, &now).await;
    let stays = run(pool, project, kept, "succeeded", 0, &now).await;
    let gone_c = run(pool, other, other_wf, "waiting", 0, &now).await;

    sqlx::query("DELETE FROM meshhook.workflows WHERE id = $1")
        .bind(doomed)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM meshhook.projects WHERE id = $1")
        .bind(other)
        .execute(pool)
        .await
        .unwrap();
    // The delete took the runs at once; their events wait for the pass.
    for id in [gone_a, gone_b, gone_c] {
        assert_eq!(exists(pool, id).await, (false, 2));
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.deleted_runs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(waiting, 3);

    // Batches of two: the loop has to come back for the third.
    let report = retention::prune(
        pool,
        Options {
            batch: 2,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert!(report.ran);
    assert_eq!((report.runs, report.events), (0, 6), "{report:?}");
    for id in [gone_a, gone_b, gone_c] {
        assert_eq!(exists(pool, id).await, (false, 0));
    }
    assert_eq!(exists(pool, stays).await, (true, 2));
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.deleted_runs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(waiting, 0);
    // Nothing left to do.
    let again = retention::prune(pool, Options::default()).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

use std::time::Duration;

use meshhook_db::partitions;
use meshhook_db::testing::TestDb;

async fn partitions_of(pool: &sqlx::PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn events_for_a_future_month_land_in_their_partition_after_maintenance() {
    let db = TestDb::new().await;
    let run = uuid::Uuid::new_v4();
    let project = uuid::Uuid::new_v4();
    // Four months ahead: beyond the two months the migration prepared, so it
    // first lands in the default partition.
    let at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT date_trunc('month', now()) + interval '4 months 3 days'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    sqlx::query("INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at) VALUES ($1, 1, $2, 'run_created', '{}', $3)")
        .bind(run)
        .bind(project)
        .bind(at)
        .execute(&db.pool)
        .await
        .unwrap();
    let created = partitions::ensure(&db.pool, "meshhook.events", 5)
        .await
        .unwrap();
    assert!(!created.is_empty(), "new partitions were created");
    // The early row moved out of the default partition into its month.
    let (table, n): (String, i64) = sqlx::query_as(
        "SELECT tableoid::regclass::text, count(*) FROM meshhook.events WHERE run_id = $1 GROUP BY 1",
    )
    .bind(run)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert_ne!(table, "meshhook.events_default");
    assert!(table.starts_with("meshhook.events_p"), "{table}");
    // And a second insert for that month goes straight there.
    sqlx::query("INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at) VALUES ($1, 2, $2, 'step_started', '{}', $3)")
        .bind(run)
        .bind(project)
        .bind(at)
        .execute(&db.pool)
        .await
        .unwrap();
    // New partitions have RLS like their parent.
    let no_rls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'meshhook.events'::regclass AND NOT c.relrowsecurity",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(no_rls, 0);
    // Idempotent.
    assert!(
        partitions::ensure(&db.pool, "meshhook.events", 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn retention_drops_partitions_past_it_and_keeps_the_rest() {
    let db = TestDb::new().await;
    // An old partition, as if created two years ago.
    sqlx::raw_sql(
        "CREATE TABLE meshhook.events_p200001 PARTITION OF meshhook.events FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-02-01 00:00+00');
         INSERT INTO meshhook.events (run_id, seq, project_id, type, data, at)
         VALUES (gen_random_uuid(), 1, gen_random_uuid(), 'run_created', '{}', '2000-01-15 00:00+00');",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let before = partitions_of(&db.pool, "meshhook.events").await;
    assert!(before.contains(&"events_p200001".to_owned()));
    let dropped = partitions::drop_expired(
        &db.pool,
        "meshhook.events",
        Duration::from_secs(30 * 86_400),
    )
    .await
    .unwrap();
    assert_eq!(dropped, vec!["events_p200001".to_owned()]);
    let after = partitions_of(&db.pool, "meshhook.events").await;
    assert!(!after.contains(&"events_p200001".to_owned()));
    assert_eq!(
        after.len(),
        before.len() - 1,
        "current and future partitions kept"
    );
    assert!(after.contains(&"events_default".to_owned()));
    // maintain() applies the configured retention to both tables.
    let report = partitions::maintain(&db.pool).await.unwrap();
    assert!(report.dropped.is_empty());
}

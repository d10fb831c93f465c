use meshhook_db::migrate;
use meshhook_db::testing::TestDb;

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerun_as_a_no_op() {
    let db = TestDb::new().await; // cloned from a template migrated from empty
    let again = migrate::run(&db.pool).await.unwrap();
    assert!(
        again.applied.is_empty(),
        "re-running applies nothing: {again:?}"
    );
    assert_eq!(again.already, migrate::MIGRATIONS.len());
    assert!(migrate::is_current(&db.pool).await.unwrap());
}

#[tokio::test]
async fn fresh_database_migrates_from_scratch() {
    let db = TestDb::new().await;
    // Drop everything and migrate from nothing, as `meshhook migrate` would.
    sqlx::raw_sql("DROP SCHEMA meshhook CASCADE")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(!migrate::is_current(&db.pool).await.unwrap());
    let report = migrate::run(&db.pool).await.unwrap();
    assert_eq!(report.applied.len(), migrate::MIGRATIONS.len());
    assert!(migrate::is_current(&db.pool).await.unwrap());
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let db = TestDb::new().await;
    sqlx::query("UPDATE meshhook.schema_migrations SET checksum = '\\x00' WHERE version = 2")
        .execute(&db.pool)
        .await
        .unwrap();
    let err = migrate::run(&db.pool).await.unwrap_err();
    assert!(
        matches!(err, meshhook_db::Error::MigrationChanged { version: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn every_table_has_row_level_security_enabled() {
    let db = TestDb::new().await;
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'meshhook' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for expected in [
        "users",
        "projects",
        "project_members",
        "api_keys",
        "workflows",
        "workflow_versions",
        "webhooks",
        "webhook_deliveries",
        "runs",
        "events",
        "secrets",
        "audit_log",
    ] {
        assert!(
            tables.iter().any(|(t, _)| t == expected),
            "table {expected} exists"
        );
    }
    let without: Vec<_> = tables
        .iter()
        .filter(|(_, rls)| !rls)
        .map(|(t, _)| t.as_str())
        .collect();
    assert!(without.is_empty(), "tables without RLS: {without:?}");
}

#[tokio::test]
async fn a_member_sees_only_their_own_projects_rows() {
    let db = TestDb::new().await;
    let (alice, bob): (uuid::Uuid, uuid::Uuid) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (id, email) in [(alice, "alice@example.com"), (bob, "bob@example.com")] {
        sqlx::query("INSERT INTO meshhook.users (id, email) VALUES ($1, $2)")
            .bind(id)
            .bind(email)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // Each creates a project through the RLS-bound role.
    let mut projects = Vec::new();
    for user in [alice, bob] {
        let mut tx = db.pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('request.jwt.claims', $1, true)")
            .bind(serde_json::json!({"sub": user, "role": "authenticated"}).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::raw_sql("SET LOCAL ROLE authenticated")
            .execute(&mut *tx)
            .await
            .unwrap();
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM meshhook.create_project('p')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO meshhook.workflows (project_id, name) VALUES ($1, 'wf')")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        projects.push(id);
    }
    // Bob, with his claims, sees nothing of Alice's.
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('request.jwt.claims', $1, true)")
        .bind(serde_json::json!({"sub": bob, "role": "authenticated"}).to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql("SET LOCAL ROLE authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    let visible: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT project_id FROM meshhook.workflows")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![projects[1]]);
    let err =
        sqlx::query("INSERT INTO meshhook.workflows (project_id, name) VALUES ($1, 'intrusion')")
            .bind(projects[0])
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

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

/// Migration 0011 replaced the per-row foreign keys of runs and delivery
/// rows by one lock per batch and delete triggers: deleting a workflow,
/// webhook or project still removes what hung off it, and a run cannot be
/// inserted for a workflow that is gone.
#[tokio::test]
async fn deletes_cascade_without_row_foreign_keys_and_gone_workflows_are_refused() {
    use chrono::Utc;
    use meshhook_core::event::Event;
    use meshhook_db::runs::{self, NewRun};
    use meshhook_db::webhooks::{self, Fields, NewDelivery};
    use serde_json::json;
    use uuid::Uuid;

    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let def = json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []});
    let project = meshhook_db::workflows::create_project(&mut conn, "p")
        .await
        .unwrap();
    let mut add = async |name: &str| {
        let wf = meshhook_db::workflows::create(&mut conn, project, name, &def)
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
        webhooks::insert(
            &mut conn,
            hook,
            project,
            wf,
            &format!("tok_{hook}"),
            &fields,
        )
        .await
        .unwrap();
        let run = NewRun {
            id: Uuid::now_v7(),
            project_id: project,
            workflow_id: wf,
            workflow_version_id: None,
            version: None,
            trigger_kind: "test",
            trigger: json!({"body": {}}),
            webhook_id: Some(hook),
            idempotency_key: None,
            parent_run_id: None,
            resumed_from_node: None,
            definition: Some(def.clone()),
        };
        let created = [Event::RunCreated {
            run_id: run.id,
            workflow_id: wf,
            version: 0,
            trigger: run.trigger.clone(),
            timeout_ms: None,
            parent_run_id: None,
        }];
        runs::insert_many(&mut conn, &[(&run, &created[..])], Utc::now())
            .await
            .unwrap();
        let row = NewDelivery {
            webhook_id: hook,
            project_id: project,
            received_at: Utc::now(),
            verdict: "accepted",
            status_code: 202,
            run_id: Some(run.id),
            dedupe_key: None,
            detail: None,
            latency_ms: 1.0,
            remote_addr: None,
        };
        webhooks::insert_deliveries(&mut conn, &[row])
            .await
            .unwrap();
        (wf, hook, run)
    };
    let (wf1, hook1, run1) = add("one").await;
    let (_wf2, hook2, _run2) = add("two").await;
    let (_wf3, _hook3, _run3) = add("three").await;
    let count = async |conn: &mut sqlx::PgConnection, sql: &str| -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(conn)
            .await
            .unwrap()
    };
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM meshhook.runs").await,
        3
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM meshhook.webhook_deliveries"
        )
        .await,
        3
    );

    // A webhook's delivery log goes with it; its runs stay.
    sqlx::query("DELETE FROM meshhook.webhooks WHERE id = $1")
        .bind(hook2)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM meshhook.webhook_deliveries"
        )
        .await,
        2
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM meshhook.runs").await,
        3
    );

    // A workflow's runs go with it (and its webhooks' log, by their cascade).
    assert!(
        meshhook_db::workflows::delete(&mut conn, wf1)
            .await
            .unwrap()
    );
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM meshhook.runs")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&run1.id));
    let hooks_logged: Vec<Uuid> =
        sqlx::query_scalar("SELECT webhook_id FROM meshhook.webhook_deliveries")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(hooks_logged.len(), 1);
    assert!(!hooks_logged.contains(&hook1));

    // A run for the deleted workflow is refused, not orphaned.
    let orphan = NewRun {
        id: Uuid::now_v7(),
        ..run1
    };
    let err = runs::insert_many(&mut conn, &[(&orphan, &[][..])], Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, meshhook_db::Error::Gone("workflow")), "{err}");

    // The project takes everything else with it.
    sqlx::query("DELETE FROM meshhook.projects WHERE id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM meshhook.runs").await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM meshhook.webhook_deliveries"
        )
        .await,
        0
    );
}

/// Migration 0012: a project's redaction rules are read by every member
/// and written only by admins and owners, under the same RLS policies as
/// the project row; the column holds an object or NULL (the defaults).
#[tokio::test]
async fn redaction_rules_follow_the_project_rows_policies() {
    use meshhook_db::{projects, session};
    use serde_json::json;
    use uuid::Uuid;

    let db = TestDb::new().await;
    let (owner, editor, stranger) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for id in [owner, editor, stranger] {
        sqlx::query("INSERT INTO meshhook.users (id, email) VALUES ($1, $2)")
            .bind(id)
            .bind(format!("{id}@example.com"))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let claims = |id: Uuid| json!({"sub": id, "role": "authenticated"});
    let mut tx = session::begin_as(&db.pool, &claims(owner)).await.unwrap();
    let project = projects::create(&mut tx, "p").await.unwrap().id;
    projects::add_member(&mut tx, project, editor, "editor")
        .await
        .unwrap();
    assert_eq!(
        projects::redaction(&mut tx, project).await.unwrap(),
        Some(None),
        "NULL: the defaults"
    );
    let rules = json!({"enabled": true, "keys": ["ssn"]});
    assert!(
        projects::set_redaction(&mut tx, project, Some(&rules))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    // An editor reads them but cannot change them; a stranger sees nothing.
    let mut tx = session::begin_as(&db.pool, &claims(editor)).await.unwrap();
    assert_eq!(
        projects::redaction(&mut tx, project).await.unwrap(),
        Some(Some(rules.clone()))
    );
    assert!(
        !projects::set_redaction(&mut tx, project, None)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    let mut tx = session::begin_as(&db.pool, &claims(stranger))
        .await
        .unwrap();
    assert_eq!(projects::redaction(&mut tx, project).await.unwrap(), None);
    assert!(
        !projects::set_redaction(&mut tx, project, Some(&json!({})))
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();

    // Only objects (or NULL) are stored.
    let mut conn = db.pool.acquire().await.unwrap();
    let err = projects::set_redaction(&mut conn, project, Some(&json!([1])))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("projects_redaction_is_object"),
        "{err}"
    );
    assert!(
        projects::set_redaction(&mut conn, project, None)
            .await
            .unwrap()
    );
}

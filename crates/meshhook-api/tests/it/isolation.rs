//! Tenant isolation as a matrix: every resource route, tried by a member
//! of project A with each role (users and API keys) and by outsiders. The
//! result follows the role table; outsiders always get 404, never 403 or
//! data. Then the same at the SQL level: with another tenant's claims and
//! the `authenticated` role, raw SELECTs on every table return none of A's
//! rows.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, User, simple_definition};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

/// What a case needs created (by A's owner) before each attempt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Prep {
    None,
    /// `{wid}`: a fresh valid workflow.
    Workflow,
    /// `{sid}`: a fresh secret.
    Secret,
    /// `{kid}`: a fresh API key.
    ApiKey,
    /// `{uid}`: a fresh viewer member.
    Member,
    /// `{email}`: a fresh user, not a member.
    NewUser,
    /// `{rid}`: a fresh queued run.
    Run,
    /// `{pid}`: a fresh project where the caller has its role.
    Project,
}

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    min: Role,
    prep: Prep,
    ok: &'static [u16],
}

fn case(method: Method, path: &'static str, min: Role, ok: &'static [u16]) -> Case {
    Case {
        method,
        path,
        body: None,
        min,
        prep: Prep::None,
        ok,
    }
}

impl Case {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn prep(mut self, prep: Prep) -> Self {
        self.prep = prep;
        self
    }
}

fn cases() -> Vec<Case> {
    use Method as M;
    use Role::*;
    vec![
        // Projects.
        case(M::GET, "/api/v1/projects/{pid}", Viewer, &[200]),
        case(M::PATCH, "/api/v1/projects/{pid}", Admin, &[200]).body(json!({"name": "renamed"})),
        case(M::DELETE, "/api/v1/projects/{pid}", Owner, &[204]).prep(Prep::Project),
        // Members.
        case(M::GET, "/api/v1/projects/{pid}/members", Viewer, &[200]),
        case(M::POST, "/api/v1/projects/{pid}/members", Admin, &[201])
            .body(json!({"email": "{email}", "role": "viewer"}))
            .prep(Prep::NewUser),
        case(
            M::PATCH,
            "/api/v1/projects/{pid}/members/{uid}",
            Admin,
            &[200],
        )
        .body(json!({"role": "editor"}))
        .prep(Prep::Member),
        case(
            M::DELETE,
            "/api/v1/projects/{pid}/members/{uid}",
            Admin,
            &[204],
        )
        .prep(Prep::Member),
        // API keys.
        case(M::POST, "/api/v1/projects/{pid}/api-keys", Admin, &[201])
            .body(json!({"name": "k", "role": "viewer"})),
        case(M::GET, "/api/v1/projects/{pid}/api-keys", Admin, &[200]),
        case(
            M::DELETE,
            "/api/v1/projects/{pid}/api-keys/{kid}",
            Admin,
            &[204],
        )
        .prep(Prep::ApiKey),
        // Workflows and versions.
        case(M::POST, "/api/v1/projects/{pid}/workflows", Editor, &[201])
            .body(json!({"name": "new", "definition": simple_definition()})),
        case(M::GET, "/api/v1/projects/{pid}/workflows", Viewer, &[200]),
        case(M::GET, "/api/v1/workflows/{wid}", Viewer, &[200]),
        case(M::PUT, "/api/v1/workflows/{wid}", Editor, &[200]).body(json!({"name": "edited"})),
        case(M::DELETE, "/api/v1/workflows/{wid}", Editor, &[204]).prep(Prep::Workflow),
        case(M::POST, "/api/v1/workflows/{wid}/validate", Viewer, &[200]),
        case(M::POST, "/api/v1/workflows/{wid}/publish", Editor, &[201]).prep(Prep::Workflow),
        case(M::GET, "/api/v1/workflows/{wid}/versions", Viewer, &[200]),
        case(M::GET, "/api/v1/workflows/{wid}/versions/1", Viewer, &[200]),
        case(
            M::POST,
            "/api/v1/workflows/{wid}/versions/1/restore",
            Editor,
            &[200],
        ),
        case(M::POST, "/api/v1/workflows/{wid}/test-runs", Editor, &[201])
            .body(json!({"payload": {"items": [1], "user": "u"}})),
        // Runs.
        case(M::GET, "/api/v1/projects/{pid}/runs", Viewer, &[200]),
        case(M::GET, "/api/v1/runs/{rid}", Viewer, &[200]),
        case(M::GET, "/api/v1/runs/{rid}/events", Viewer, &[200]),
        case(M::GET, "/api/v1/runs/{rid}/replay", Viewer, &[200]),
        case(M::POST, "/api/v1/runs/{rid}/resume", Editor, &[201, 422])
            .body(json!({"from_node": "pick"})),
        case(M::POST, "/api/v1/runs/{rid}/cancel", Editor, &[200]).prep(Prep::Run),
        case(M::GET, "/api/v1/projects/{pid}/dead-letter", Viewer, &[200]),
        // Secrets.
        case(M::POST, "/api/v1/projects/{pid}/secrets", Admin, &[201])
            .body(json!({"name": "{uniq}", "value": "s3cr3t-value-for-matrix"})),
        case(M::GET, "/api/v1/projects/{pid}/secrets", Viewer, &[200]),
        case(M::GET, "/api/v1/secrets/{sid}", Viewer, &[200]),
        case(M::PUT, "/api/v1/secrets/{sid}", Admin, &[200])
            .body(json!({"value": "another-value-1234"})),
        case(M::DELETE, "/api/v1/secrets/{sid}", Admin, &[204]).prep(Prep::Secret),
        // Audit.
        case(M::GET, "/api/v1/projects/{pid}/audit-log", Admin, &[200]),
    ]
}

/// A caller: a user member, an API key of project A, or an outsider.
struct Caller {
    label: String,
    token: String,
    /// `None`: not in project A.
    role: Option<Role>,
    /// The user behind it (for fresh projects); `None` for API keys.
    user: Option<User>,
    key_role: Option<&'static str>,
}

struct Fixture {
    owner: User,
    pid: Uuid,
    wid: Uuid,
    rid: Uuid,
    sid: Uuid,
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Editor => "editor",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

async fn fresh_secret(app: &App, f: &Fixture) -> Uuid {
    let r = app
        .post(
            &format!("/api/v1/projects/{}/secrets", f.pid),
            &f.owner.token,
            json!({"name": format!("S_{}", Uuid::new_v4().simple()), "value": "matrix-secret-value-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().parse().unwrap()
}

async fn fresh_run(app: &App, f: &Fixture) -> Uuid {
    app.test_run(&f.owner, f.wid, json!({"items": [1, 2], "user": "x"}))
        .await
}

#[tokio::test]
async fn role_matrix_over_every_resource_route() {
    let app = App::spawn().await;
    let owner = app.user("owner").await;
    let pid = app.project(&owner, "A").await;
    let wid = app.workflow(&owner, pid, simple_definition()).await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &owner.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let f0 = Fixture {
        owner: owner.clone(),
        pid,
        wid,
        rid: Uuid::nil(),
        sid: Uuid::nil(),
    };
    let rid = fresh_run(&app, &f0).await;
    let sid = fresh_secret(&app, &f0).await;
    let f = Fixture { rid, sid, ..f0 };

    let mut callers = Vec::new();
    for (role, name) in [
        (Role::Viewer, "viewer"),
        (Role::Editor, "editor"),
        (Role::Admin, "admin"),
        (Role::Owner, "owner"),
    ] {
        let u = app.user(name).await;
        app.add_member(&owner, pid, &u, name).await;
        callers.push(Caller {
            label: format!("user:{name}"),
            token: u.token.clone(),
            role: Some(role),
            user: Some(u),
            key_role: None,
        });
    }
    for (role, name) in [
        (Role::Viewer, "viewer"),
        (Role::Editor, "editor"),
        (Role::Admin, "admin"),
    ] {
        let (_, key) = app.api_key(&owner, pid, name).await;
        callers.push(Caller {
            label: format!("key:{name}"),
            token: key,
            role: Some(role),
            user: None,
            key_role: Some(name),
        });
    }
    // Outsiders: a user with a project of their own, and that project's
    // admin key.
    let outsider = app.user("outsider").await;
    let b = app.project(&outsider, "B").await;
    let (_, b_key) = app.api_key(&outsider, b, "admin").await;
    callers.push(Caller {
        label: "outsider".into(),
        token: outsider.token.clone(),
        role: None,
        user: Some(outsider.clone()),
        key_role: None,
    });
    callers.push(Caller {
        label: "outsider key".into(),
        token: b_key,
        role: None,
        user: None,
        key_role: None,
    });

    let mut checked = 0;
    for c in cases() {
        for caller in &callers {
            let mut path = c.path.replace("{wid}", &f.wid.to_string());
            path = path.replace("{rid}", &f.rid.to_string());
            path = path.replace("{sid}", &f.sid.to_string());
            let mut body = c.body.clone().map(|b| {
                let s = b
                    .to_string()
                    .replace("{uniq}", &format!("N_{}", Uuid::new_v4().simple()));
                serde_json::from_str::<Value>(&s).unwrap()
            });
            // The caller's token; for a fresh project, possibly a fresh key.
            let mut token = caller.token.clone();
            let mut project = f.pid;
            match c.prep {
                Prep::None => {}
                Prep::Workflow => {
                    let w = app.workflow(&f.owner, f.pid, simple_definition()).await;
                    path = c.path.replace("{wid}", &w.to_string());
                }
                Prep::Secret => {
                    let s = fresh_secret(&app, &f).await;
                    path = c.path.replace("{sid}", &s.to_string());
                }
                Prep::Run => {
                    let r = fresh_run(&app, &f).await;
                    path = c.path.replace("{rid}", &r.to_string());
                }
                Prep::ApiKey => {
                    let (k, _) = app.api_key(&f.owner, f.pid, "viewer").await;
                    path = path.replace("{kid}", &k.to_string());
                }
                Prep::Member => {
                    let m = app.user("member").await;
                    app.add_member(&f.owner, f.pid, &m, "viewer").await;
                    path = path.replace("{uid}", &m.id.to_string());
                }
                Prep::NewUser => {
                    let m = app.user("newcomer").await;
                    body = body.map(|b| {
                        serde_json::from_str(&b.to_string().replace("{email}", &m.email)).unwrap()
                    });
                }
                Prep::Project => {
                    project = app.project(&f.owner, "doomed").await;
                    if let Some(role) = caller.role {
                        if let Some(u) = &caller.user {
                            app.add_member(&f.owner, project, u, role_name(role)).await;
                        } else if let Some(kr) = caller.key_role {
                            token = app.api_key(&f.owner, project, kr).await.1;
                        }
                    }
                }
            }
            path = path.replace("{pid}", &project.to_string());
            let r = app
                .call(c.method.clone(), &path, Some(&token), body.as_ref())
                .await;
            let what = format!(
                "{} {} as {}: {} {}",
                c.method, c.path, caller.label, r.status, r.text
            );
            match caller.role {
                None => {
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}");
                    assert_eq!(r.body["code"], "not_found", "{what}");
                }
                Some(role) if role < c.min => {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(r.body["code"], "forbidden", "{what}");
                }
                Some(_) => assert!(c.ok.contains(&r.status.as_u16()), "{what}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, cases().len() * callers.len());

    // Nothing of A leaked into the outsider's lists.
    let projects = app.get("/api/v1/projects", &outsider.token).await;
    assert_eq!(projects.body.as_array().unwrap().len(), 1);
    assert!(!projects.text.contains(&pid.to_string()));
}

#[tokio::test]
async fn owners_are_protected_and_only_owners_touch_owners() {
    let app = App::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let pid = app.project(&owner, "A").await;
    app.add_member(&owner, pid, &admin, "admin").await;
    let members = format!("/api/v1/projects/{pid}/members");
    // An admin cannot make someone owner, nor demote or remove an owner.
    let newbie = app.user("newbie").await;
    let r = app
        .post(
            &members,
            &admin.token,
            json!({"email": newbie.email, "role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PATCH,
            &format!("{members}/{}", owner.id),
            Some(&admin.token),
            Some(&json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .delete(&format!("{members}/{}", owner.id), &admin.token)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The last owner cannot leave or step down.
    let r = app
        .delete(&format!("{members}/{}", owner.id), &owner.token)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["code"], "last_owner");
    let r = app
        .call(
            Method::PATCH,
            &format!("{members}/{}", owner.id),
            Some(&owner.token),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Anyone may leave; unknown emails and duplicates are refused.
    let r = app
        .delete(&format!("{members}/{}", admin.id), &admin.token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .post(
            &members,
            &owner.token,
            json!({"email": "ghost@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["code"], "unknown_user");
    app.add_member(&owner, pid, &newbie, "viewer").await;
    let r = app
        .post(
            &members,
            &owner.token,
            json!({"email": newbie.email, "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["code"], "already_member");
    // Every change is in the audit log with who and from where.
    let log = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &owner.token)
        .await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["project.create", "member.add", "member.leave"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(log.body["items"][0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn rls_hides_other_tenants_rows_at_the_sql_level() {
    let app = App::spawn().await;
    app.orchestrator();
    let a = app.user("a").await;
    let b = app.user("b").await;
    let pid_a = app.project(&a, "A").await;
    let pid_b = app.project(&b, "B").await;
    // Data in every tenant table of A.
    let wid = app.workflow(&a, pid_a, simple_definition()).await;
    app.post(
        &format!("/api/v1/workflows/{wid}/publish"),
        &a.token,
        json!({}),
    )
    .await;
    let run = app
        .test_run(&a, wid, json!({"items": [1], "user": "u"}))
        .await;
    app.wait_run(&a, run, &["succeeded"]).await;
    app.post(
        &format!("/api/v1/projects/{pid_a}/secrets"),
        &a.token,
        json!({"name": "TOKEN", "value": "tenant-a-secret-value"}),
    )
    .await;
    app.api_key(&a, pid_a, "viewer").await;
    let viewer = app.user("viewer").await;
    app.add_member(&a, pid_a, &viewer, "viewer").await;
    // Tables without API routes yet: rows written as the service role.
    let hook: Uuid = sqlx::query_scalar(
        "INSERT INTO meshhook.webhooks (project_id, workflow_id, token) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(pid_a)
    .bind(wid)
    .bind(Uuid::new_v4().to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO meshhook.webhook_deliveries (webhook_id, project_id, verdict, status_code) VALUES ($1, $2, 'accepted', 202)",
    )
    .bind(hook)
    .bind(pid_a)
    .execute(&app.db.pool)
    .await
    .unwrap();

    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text,
                has_any_column_privilege('authenticated', c.oid, 'SELECT'),
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'project_id' AND NOT a.attisdropped)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'meshhook' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");

    let a_members: Vec<Uuid> = vec![a.id, viewer.id];
    let claims_b = json!({"sub": b.id, "role": "authenticated"});
    let claims_b_key = json!({"sub": Uuid::new_v4(), "role": "authenticated", "mh_project": pid_b, "mh_role": "admin"});
    let claims_a = json!({"sub": a.id, "role": "authenticated"});
    let mut visible_to_a = 0;
    for (table, readable, has_project) in &tables {
        let predicate = match table.as_str() {
            "projects" => "id = $1".to_owned(),
            "users" => "id = ANY($2)".to_owned(),
            _ if *has_project => "project_id = $1".to_owned(),
            // Tables without tenant rows (queue, settings, ...): any row.
            _ => "$1::uuid IS NOT NULL AND cardinality($2::uuid[]) > 0".to_owned(),
        };
        let sql = format!("SELECT count(*) FROM meshhook.{table} WHERE {predicate}");
        for claims in [&claims_b, &claims_b_key, &claims_a] {
            let mut tx = app.db.pool.begin().await.unwrap();
            sqlx::query("SELECT set_config('request.jwt.claims', $1, true)")
                .bind(claims.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("SET LOCAL ROLE authenticated")
                .execute(&mut *tx)
                .await
                .unwrap();
            let res: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(pid_a)
                .bind(&a_members)
                .fetch_one(&mut *tx)
                .await;
            tx.rollback().await.unwrap();
            match res {
                Ok(n) if claims == &claims_a => visible_to_a += usize::from(n > 0),
                Ok(n) => assert_eq!(n, 0, "{table}: {n} rows of A visible to {claims}"),
                Err(sqlx::Error::Database(e)) => {
                    assert!(!readable, "{table}: readable but failed: {e}");
                    assert_eq!(e.code().as_deref(), Some("42501"), "{table}: {e}");
                }
                Err(e) => panic!("{table}: {e}"),
            }
        }
    }
    // The predicates do match A's rows for A (so zero above means hidden).
    assert!(visible_to_a >= 10, "{visible_to_a}");
}

#[tokio::test]
async fn another_tenants_ids_are_404_for_every_method() {
    let app = App::spawn().await;
    let a = app.user("a").await;
    let b = app.user("b").await;
    let pid = app.project(&a, "A").await;
    app.project(&b, "B").await;
    let wid = app.workflow(&a, pid, simple_definition()).await;
    for (m, p) in [
        (Method::GET, format!("/api/v1/workflows/{wid}")),
        (Method::DELETE, format!("/api/v1/workflows/{wid}")),
        (Method::POST, format!("/api/v1/workflows/{wid}/publish")),
        (Method::GET, format!("/api/v1/workflows/{}", Uuid::new_v4())),
    ] {
        let r = app.call(m.clone(), &p, Some(&b.token), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {p}: {}", r.text);
    }
    // Still there for A.
    assert_eq!(
        app.get(&format!("/api/v1/workflows/{wid}"), &a.token)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn request_sessions_run_as_authenticated_and_leave_nothing_behind() {
    let db = meshhook_db::testing::TestDb::new().await;
    let id = Uuid::new_v4();
    let claims = json!({"sub": id, "role": "authenticated"});
    let mut tx = meshhook_db::session::begin_as(&db.pool, &claims)
        .await
        .unwrap();
    let (user, uid): (String, Option<Uuid>) =
        sqlx::query_as("SELECT current_user::text, auth.uid()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(user, "authenticated");
    assert_eq!(uid, Some(id));
    // The queue is out of reach under RLS...
    let denied = sqlx::query("SELECT count(*) FROM meshhook.queue_messages")
        .execute(&mut *tx)
        .await;
    assert!(denied.is_err());
    tx.rollback().await.unwrap();
    let mut tx = meshhook_db::session::begin_as(&db.pool, &claims)
        .await
        .unwrap();
    // ...and reachable after `elevate`, until `restrict`.
    meshhook_db::session::elevate(&mut tx).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_ne!(user, "authenticated");
    sqlx::query("SELECT count(*) FROM meshhook.queue_messages")
        .execute(&mut *tx)
        .await
        .unwrap();
    meshhook_db::session::restrict(&mut tx).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(user, "authenticated");
    tx.commit().await.unwrap();
    // Transaction-local: the pooled connections keep neither role nor claims.
    for _ in 0..3 {
        let (user, claims): (String, Option<String>) = sqlx::query_as(
            "SELECT current_user::text, nullif(current_setting('request.jwt.claims', true), '')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_ne!(user, "authenticated");
        assert_eq!(claims, None);
    }
}

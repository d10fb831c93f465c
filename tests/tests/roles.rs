//! The binary's roles as separate OS processes: migrate, api,
//! orchestrator, executor, and dev with its private PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshhook_system_tests::{Process, TempDir, TestDb};

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn migrate_then_each_role_serves_health_and_readiness_and_stops_on_sigterm() {
    let db = TestDb::empty().await;
    let kek = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let jwt = "a-test-secret-of-at-least-32-bytes-long";

    // Before migrating, a role is up but not ready.
    let mut api = Process::start(
        &["api"],
        &[
            ("DATABASE_URL", &db.url),
            ("MESHHOOK_JWT_SECRET", jwt),
            ("MESHHOOK_KEK", kek),
        ],
    )
    .unwrap();
    api.wait_ready("/healthz", Duration::from_secs(20))
        .await
        .unwrap();
    let (status, body) = get_json(&format!("{}/readyz", api.base_url)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("meshhook migrate"),
        "{body}"
    );

    let mut migrate = Process::start(&["migrate"], &[("DATABASE_URL", &db.url)]).unwrap();
    let status = migrate.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert!(status.success(), "{}", migrate.output());
    let applied = format!(
        "migrations: {} applied",
        meshhook_db::migrate::MIGRATIONS.len()
    );
    assert!(migrate.output().contains(&applied), "{}", migrate.output());
    // Idempotent.
    let mut again = Process::start(&["migrate"], &[("DATABASE_URL", &db.url)]).unwrap();
    assert!(
        again
            .wait_exit(Duration::from_secs(60))
            .await
            .unwrap()
            .success()
    );
    assert!(again.output().contains("0 applied"), "{}", again.output());

    let (status, body) = get_json(&format!("{}/readyz", api.base_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");

    for role in ["orchestrator", "executor"] {
        let mut p =
            Process::start(&[role], &[("DATABASE_URL", &db.url), ("MESHHOOK_KEK", kek)]).unwrap();
        p.wait_ready("/readyz", Duration::from_secs(20))
            .await
            .unwrap();
        let (status, body) = get_json(&format!("{}/healthz", p.base_url)).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let status = p.terminate(Duration::from_secs(15)).await.unwrap();
        assert!(
            status.success(),
            "{role} exits 0 on SIGTERM: {}",
            p.output()
        );
    }
    let status = api.terminate(Duration::from_secs(15)).await.unwrap();
    assert!(status.success(), "{}", api.output());
}

#[tokio::test]
async fn roles_without_database_url_refuse_with_one_clear_line() {
    for role in ["api", "orchestrator", "executor", "migrate"] {
        let mut p = Process::start(&[role], &[]).unwrap();
        let status = p.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert!(!status.success());
        let out = p.output();
        assert!(out.contains("DATABASE_URL is not set"), "{role}: {out}");
    }
}

#[tokio::test]
async fn api_without_its_keys_refuses_with_one_clear_line() {
    let db = TestDb::empty().await;
    let mut p = Process::start(&["api"], &[("DATABASE_URL", &db.url)]).unwrap();
    let status = p.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert!(!status.success());
    let out = p.output();
    assert!(out.contains("MESHHOOK_JWT_SECRET is not set"), "{out}");
}

#[tokio::test]
async fn dev_starts_a_private_postgres_restarts_on_the_same_data_dir_and_refuses_a_locked_one() {
    let data = TempDir::new("dev");
    let dir = data.0.to_string_lossy().into_owned();
    let env = [("MESHHOOK_DATA_DIR", dir.as_str())];

    let mut first = Process::start(&["dev"], &env).unwrap();
    first
        .wait_ready("/readyz", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        data.0.join("pg").join("PG_VERSION").is_file(),
        "cluster under the data dir"
    );
    assert!(
        data.0.join("jwt-secret").is_file() && data.0.join("kek").is_file(),
        "dev keys generated and kept"
    );
    let jwt_secret = std::fs::read_to_string(data.0.join("jwt-secret")).unwrap();

    // A second dev on the same data dir is refused, clearly, and exits.
    let mut second = Process::start(&["dev"], &env).unwrap();
    let status = second.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(!status.success());
    let out = second.output();
    assert!(
        out.contains("is in use by another MeshHook process"),
        "{out}"
    );
    assert!(
        out.contains(&first.child.id().to_string()),
        "names the holder's pid: {out}"
    );
    // The first is unaffected.
    let (status, _) = get_json(&format!("{}/readyz", first.base_url)).await;
    assert_eq!(status, 200);

    assert!(
        first
            .terminate(Duration::from_secs(30))
            .await
            .unwrap()
            .success(),
        "{}",
        first.output()
    );
    // Its PostgreSQL stopped with it.
    let pid_file = data.0.join("pg").join("postmaster.pid");
    assert!(
        !pid_file.exists(),
        "postmaster.pid left behind: the cluster is still running"
    );

    // Restart on the same data dir: same cluster, same keys, ready.
    let mut third = Process::start(&["dev"], &env).unwrap();
    third
        .wait_ready("/readyz", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(data.0.join("jwt-secret")).unwrap(),
        jwt_secret
    );
    assert!(
        !third.output().contains("initialising a private PostgreSQL"),
        "reused, not re-initialised"
    );

    // kill -9: the watchdog stops the orphaned PostgreSQL, and the next start works.
    third.child.kill().unwrap();
    third.child.wait().unwrap();
    let start = std::time::Instant::now();
    while pid_file.exists() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !pid_file.exists(),
        "the watchdog stopped PostgreSQL after kill -9"
    );
    let mut fourth = Process::start(&["dev"], &env).unwrap();
    fourth
        .wait_ready("/readyz", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        fourth
            .terminate(Duration::from_secs(30))
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn unknown_api_paths_answer_the_error_shape_and_the_root_serves_html() {
    let server = meshhook_system_tests::spawn_dev().await.unwrap();
    let r = reqwest::get(format!("{}/api/v1/definitely-not-a-route", server.base_url))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers().contains_key("x-request-id"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/definitely-not-a-route")
    );
    // History-mode routes get the SPA's index (or the placeholder page).
    let r = reqwest::get(format!("{}/workflows/123", server.base_url))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
}

/// The value of `series` in a Prometheus text scrape (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn scrape(base: &str) -> String {
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn worker_roles_serve_health_readiness_and_metrics_that_move_and_refresh_the_views() {
    use meshhook_orchestrator::engine;

    let db = meshhook_system_tests::TestDb::new().await;
    let kek = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    // A loopback target answering 200.
    let target = axum::Router::new().route(
        "/ok",
        axum::routing::post(|| async { axum::Json(serde_json::json!({"ok": true})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ok", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, target).await.unwrap() });

    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("MESHHOOK_KEK", kek),
        ("MESHHOOK_EGRESS_ALLOWLIST", "127.0.0.1/32"),
        ("MESHHOOK_METRICS_REFRESH_SECS", "1"),
    ];
    let mut orch = Process::start(&["orchestrator"], &env).unwrap();
    let mut exec = Process::start(&["executor"], &env).unwrap();
    for p in [&mut orch, &mut exec] {
        p.wait_ready("/readyz", Duration::from_secs(20))
            .await
            .unwrap();
        let (status, body) = get_json(&format!("{}/healthz", p.base_url)).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let (status, body) = get_json(&format!("{}/readyz", p.base_url)).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
        let text = scrape(&p.base_url).await;
        for series in [
            "# TYPE meshhook_step_duration_seconds histogram",
            "meshhook_queue_depth{queue=\"orchestrator\"}",
            "meshhook_queue_oldest_age_seconds{queue=\"executor\"}",
            "meshhook_runs{status=\"queued\"}",
            "meshhook_db_pool_max_connections",
            "meshhook_db_up 1",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
    }

    // A run through both workers: the orchestrator ends `pick`, the
    // executor calls the target and ends `call` and `done`.
    let def = serde_json::json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "trigger.body"}},
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": url, "timeout_ms": 5000}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.call.status"}}
        ],
        "edges": [{"from": "pick", "to": "call"}, {"from": "call", "to": "done"}]
    });
    let mut tx = db.pool.begin().await.unwrap();
    let p = meshhook_db::workflows::create_project(&mut tx, "m")
        .await
        .unwrap();
    let wf = meshhook_db::workflows::create(&mut tx, p, "m", &def)
        .await
        .unwrap();
    meshhook_db::workflows::publish(&mut tx, wf, None)
        .await
        .unwrap();
    let v = engine::latest_version(&mut tx, wf).await.unwrap().unwrap();
    let trig = engine::trigger(
        serde_json::json!({"a": 1}),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    let run = engine::start_run(
        &mut tx,
        &v,
        trig,
        engine::Origin::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM meshhook.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if status == "succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "run still {status}\n{}\n{}",
            orch.output(),
            exec.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let o = scrape(&orch.base_url).await;
    let e = scrape(&exec.base_url).await;
    assert!(
        sample(
            &o,
            "meshhook_step_duration_seconds_count{node_type=\"transform\"}"
        ) >= 1.0,
        "{o}"
    );
    assert!(
        sample(&e, "meshhook_http_calls_total{outcome=\"2xx\"}") >= 1.0,
        "{e}"
    );
    assert!(
        sample(&e, "meshhook_http_call_duration_seconds_count") >= 1.0,
        "{e}"
    );
    assert!(
        sample(
            &e,
            "meshhook_step_duration_seconds_count{node_type=\"http_call\"}"
        ) >= 1.0,
        "{e}"
    );
    let finished = sample(&o, "meshhook_runs_finished_total{status=\"succeeded\"}")
        + sample(&e, "meshhook_runs_finished_total{status=\"succeeded\"}");
    assert!(finished >= 1.0, "{o}\n{e}");

    // The orchestrator refreshes the views every second here.
    let started = std::time::Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(succeeded), 0)::bigint FROM meshhook.metrics_runs_hourly WHERE workflow_id = $1",
        )
        .bind(wf)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "views not refreshed\n{}",
            orch.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (role, mut p) in [("orchestrator", orch), ("executor", exec)] {
        let status = p.terminate(Duration::from_secs(15)).await.unwrap();
        assert!(
            status.success(),
            "{role} exits 0 on SIGTERM: {}",
            p.output()
        );
    }
}

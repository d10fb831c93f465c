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

    // Before migrating, a role is up but not ready.
    let mut api = Process::start(&["api"], &[("DATABASE_URL", &db.url)]).unwrap();
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
    assert!(
        migrate.output().contains("migrations: 7 applied"),
        "{}",
        migrate.output()
    );
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

    let kek = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
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

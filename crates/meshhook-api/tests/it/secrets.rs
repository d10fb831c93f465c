//! The secrets vault: values are write-only (in no response, log line,
//! event or audit row), used by a real HTTP call through the executor,
//! KEK rotation under concurrent reads, ciphertext bound to its project.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::HeaderMap;
use meshhook_db::vault::{self, Keyring};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, capture_logs, kek_spec};

const PLAINTEXT: &str = "sk_live_TOPSECRET_9f8e7d6c5b4a";

/// A local HTTP endpoint that answers with the Authorization header it got
/// (an echoing remote) and remembers it.
async fn echo_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::post(move |headers: HeaderMap| {
            let store = store.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                store.lock().unwrap().push(auth.clone());
                axum::Json(json!({"you_sent": auth}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/echo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn secret_values_never_come_back_out() {
    let logs = capture_logs();
    let app = App::spawn().await;
    app.orchestrator();
    app.executor();
    let (echo_url, seen) = echo_server().await;
    let admin = app.user("admin").await;
    let pid = app.project(&admin, "vault").await;
    let mut bodies: Vec<String> = Vec::new();

    let created = app
        .post(
            &format!("/api/v1/projects/{pid}/secrets"),
            &admin.token,
            json!({"name": "API_TOKEN", "value": PLAINTEXT}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["name"], "API_TOKEN");
    assert_eq!(created.body["masked"], "sk_…5b4a");
    assert!(created.body["created_at"].is_string());
    let sid = created.body["id"].as_str().unwrap().to_owned();
    bodies.push(created.text.clone());

    // Duplicates, bad names, bad values (never echoed).
    let dup = app
        .post(
            &format!("/api/v1/projects/{pid}/secrets"),
            &admin.token,
            json!({"name": "API_TOKEN", "value": PLAINTEXT}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["code"], "secret_exists");
    bodies.push(dup.text);
    for (name, value) in [
        (json!("1BAD"), json!("x")),
        (json!("has space"), json!("x")),
        (json!("OK_NAME"), json!("")),
        (json!("OK_NAME"), json!(987_654_321_123_u64)),
        (json!("OK_NAME"), json!([PLAINTEXT])),
    ] {
        let r = app
            .post(
                &format!("/api/v1/projects/{pid}/secrets"),
                &admin.token,
                json!({"name": name, "value": value}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name} {value}: {}",
            r.text
        );
        assert!(!r.text.contains("987654321123"), "{}", r.text);
        bodies.push(r.text);
    }

    let list = app
        .get(&format!("/api/v1/projects/{pid}/secrets"), &admin.token)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    bodies.push(list.text);
    let one = app
        .get(&format!("/api/v1/secrets/{sid}"), &admin.token)
        .await;
    assert_eq!(one.body["masked"], "sk_…5b4a");
    bodies.push(one.text);

    // A workflow that sends it to an echoing remote.
    let definition = json!({
        "nodes": [
            {"id": "call", "type": "http_call", "config": {
                "method": "POST", "url": echo_url,
                "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"},
                "body": {"hello": "world"}, "retry": {"max_attempts": 1}}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.call.body"}}
        ],
        "edges": [{"from": "call", "to": "done"}]
    });
    let wid = app.workflow(&admin, pid, definition).await;
    let run = app.test_run(&admin, wid, json!({})).await;
    let detail = app.wait_run(&admin, run, &["succeeded", "failed"]).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [format!("Bearer {PLAINTEXT}")],
        "the remote got the real value"
    );
    bodies.push(detail.to_string());
    let events = app
        .get(&format!("/api/v1/runs/{run}/events"), &admin.token)
        .await;
    assert!(
        events.text.contains("secrets.API_TOKEN"),
        "symbolic in the request event"
    );
    bodies.push(events.text);

    // Replace, then delete.
    let put = app
        .put(
            &format!("/api/v1/secrets/{sid}"),
            &admin.token,
            json!({"value": format!("{PLAINTEXT}-v2")}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["masked"], "sk_…a-v2");
    bodies.push(put.text);
    let audit = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &admin.token)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["secret.create", "secret.update", "secret.decrypt"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let create_row = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "secret.create")
        .unwrap();
    assert_eq!(create_row["actor_id"], json!(admin.id));
    assert_eq!(create_row["ip"], "127.0.0.1");
    bodies.push(audit.text);
    assert_eq!(
        app.delete(&format!("/api/v1/secrets/{sid}"), &admin.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{sid}"), &admin.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    for body in &bodies {
        assert!(
            !body.contains(PLAINTEXT),
            "a response carried the value: {body}"
        );
        assert!(!body.contains("TOPSECRET"), "{body}");
    }
    // Not in the event log or the audit log at rest either.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM meshhook.events WHERE strpos(data::text, $1) > 0)
              + (SELECT count(*) FROM meshhook.audit_log WHERE strpos(details::text, $1) > 0)
              + (SELECT count(*) FROM meshhook.runs WHERE strpos(coalesce(output::text, '') || trigger::text, $1) > 0)",
    )
    .bind(&PLAINTEXT[8..])
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    // Nor in any log line (captured at TRACE).
    let text = logs.text();
    assert!(text.len() > 1000, "logs were captured");
    assert!(!text.contains("TOPSECRET"), "a log line carried the value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_kek_under_concurrent_reads_keeps_every_secret_readable() {
    let app = App::spawn().await;
    let admin = app.user("rotator").await;
    let pid: Uuid = app.project(&admin, "rotation").await;
    let mut expected = Vec::new();
    for i in 0..40 {
        let name = format!("S{i:02}");
        let value = format!("value-number-{i:02}-{}", Uuid::new_v4());
        let r = app
            .post(
                &format!("/api/v1/projects/{pid}/secrets"),
                &admin.token,
                json!({"name": name, "value": value}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        expected.push((name, value));
    }
    let old = kek_spec("k1", 7);
    let new = kek_spec("k2", 9);
    let during = Arc::new(Keyring::parse(&new, &[&old]).unwrap());
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();

    // Readers (as the executor reads: the new KEK first, the old one as
    // previous) until the rotation is done.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let pool = app.db.pool.clone();
        let ring = during.clone();
        let names = names.clone();
        let expected = expected.clone();
        let stop = stop.clone();
        let reads = reads.clone();
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut conn = pool.acquire().await.unwrap();
                let got = vault::resolve(&mut conn, pid, &names, &ring, None)
                    .await
                    .expect("every secret decrypts during the rotation");
                for (name, value) in &expected {
                    assert_eq!(got.get(name).unwrap().expose(), value);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // What `meshhook secrets rotate-kek` runs.
    let mut conn = app.db.pool.acquire().await.unwrap();
    let report = vault::rewrap(&mut conn, &during).await.unwrap();
    assert_eq!(report.moved, 40);
    assert!(report.unreadable.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);

    // The old key can go: the new one alone opens everything.
    let only_new = Keyring::parse(&new, &[]).unwrap();
    let got = vault::resolve(&mut conn, pid, &names, &only_new, None)
        .await
        .unwrap();
    for (name, value) in &expected {
        assert_eq!(got.get(name).unwrap().expose(), value);
    }
    let kek_ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT kek_id FROM meshhook.secrets")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(kek_ids, ["k2"]);
    // A second run has nothing to do.
    assert_eq!(vault::rewrap(&mut conn, &during).await.unwrap().moved, 0);
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_project_does_not_decrypt() {
    let app = App::spawn().await;
    let a = app.user("a").await;
    let b = app.user("b").await;
    let pa = app.project(&a, "A").await;
    let pb = app.project(&b, "B").await;
    for (u, p, v) in [
        (&a, pa, "value-of-project-a-1234"),
        (&b, pb, "value-of-project-b-5678"),
    ] {
        let r = app
            .post(
                &format!("/api/v1/projects/{p}/secrets"),
                &u.token,
                json!({"name": "TOKEN", "value": v}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let ring = crate::helpers::keyring();
    let mut conn = app.db.pool.acquire().await.unwrap();
    let got = vault::resolve(&mut conn, pb, ["TOKEN"], &ring, None)
        .await
        .unwrap();
    assert_eq!(
        got.get("TOKEN").unwrap().expose(),
        "value-of-project-b-5678"
    );
    // An attacker with write access to the table copies A's sealed value
    // into B's row.
    sqlx::query(
        "UPDATE meshhook.secrets b SET ciphertext = a.ciphertext, nonce = a.nonce,
                wrapped_dek = a.wrapped_dek, dek_nonce = a.dek_nonce, kek_id = a.kek_id
         FROM meshhook.secrets a WHERE a.project_id = $1 AND b.project_id = $2 AND a.name = b.name",
    )
    .bind(pa)
    .bind(pb)
    .execute(&mut *conn)
    .await
    .unwrap();
    let err = vault::resolve(&mut conn, pb, ["TOKEN"], &ring, None)
        .await
        .unwrap_err();
    assert!(matches!(err, vault::Error::Undecryptable(_)), "{err}");
    assert!(!err.to_string().contains("value-of-project"));
    // A's own row still opens.
    let got = vault::resolve(&mut conn, pa, ["TOKEN"], &ring, None)
        .await
        .unwrap();
    assert_eq!(
        got.get("TOKEN").unwrap().expose(),
        "value-of-project-a-1234"
    );
    // The API keeps answering without values.
    let list = app
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pb}/secrets"),
            Some(&b.token),
            None::<&Value>,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains("value-of-project"));
}

#[tokio::test]
async fn rotate_kek_moves_alert_and_webhook_signing_secrets_too() {
    let app = App::spawn().await;
    let admin = app.user("rotator2").await;
    let pid: Uuid = app.project(&admin, "rotation").await;
    let wid = app
        .workflow(
            &admin,
            pid,
            json!({"nodes": [{"id": "t", "type": "terminate", "config": {"status": "succeeded"}}], "edges": []}),
        )
        .await;
    let hook = app
        .post(
            &format!("/api/v1/workflows/{wid}/webhooks"),
            &admin.token,
            json!({"verification": {"scheme": "github"}, "signing_secret": "hook-secret-before-rotation"}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let hook_id: Uuid = hook.body["id"].as_str().unwrap().parse().unwrap();
    // A rotation of the signing secret leaves two sealed keys (grace).
    let rotated = app
        .post(
            &format!("/api/v1/webhooks/{hook_id}/rotate-secret"),
            &admin.token,
            json!({"signing_secret": "hook-secret-after-rotation", "grace_seconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let rule = app
        .post(
            &format!("/api/v1/projects/{pid}/alerts"),
            &admin.token,
            json!({"name": "failures", "kind": "run_failed", "url": "http://127.0.0.1:9/alerts"}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let rule_id: Uuid = rule.body["id"].as_str().unwrap().parse().unwrap();
    let rule_secret = rule.body["signing_secret"].as_str().unwrap().to_owned();

    let new = kek_spec("k2", 9);
    let during = Keyring::parse(&new, &[&kek_spec("k1", 7)]).unwrap();
    let mut conn = app.db.pool.acquire().await.unwrap();
    let report = vault::rewrap(&mut conn, &during).await.unwrap();
    assert_eq!(report.moved, 3, "one alert secret and two webhook keys");
    assert!(report.unreadable.is_empty());
    assert_eq!(vault::rewrap(&mut conn, &during).await.unwrap().moved, 0);

    // The old KEK can go: the new one alone opens both.
    let only_new = Keyring::parse(&new, &[]).unwrap();
    let keys: Value =
        sqlx::query_scalar("SELECT signing_keys FROM meshhook.webhooks WHERE id = $1")
            .bind(hook_id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let opened =
        meshhook_api::hooks::keys::open(&only_new, pid, hook_id, &keys, chrono::Utc::now())
            .unwrap();
    let secrets: Vec<&[u8]> = opened.iter().map(|k| k.secret.as_slice()).collect();
    assert_eq!(
        secrets,
        [
            b"hook-secret-after-rotation".as_slice(),
            b"hook-secret-before-rotation".as_slice()
        ]
    );
    let sealed: (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, String) = sqlx::query_as(
        "SELECT ciphertext, nonce, wrapped_dek, dek_nonce, kek_id FROM meshhook.alert_rules WHERE id = $1",
    )
    .bind(rule_id)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let sealed = vault::Sealed {
        ciphertext: sealed.0,
        nonce: sealed.1,
        wrapped_dek: sealed.2,
        dek_nonce: sealed.3,
        kek_id: sealed.4,
    };
    assert_eq!(sealed.kek_id, "k2");
    let plain = vault::open(
        &only_new,
        pid,
        &meshhook_db::alerts::secret_name(rule_id),
        &sealed,
    )
    .unwrap();
    assert_eq!(plain.as_slice(), rule_secret.as_bytes());
}

//! Alert rules: API contract, evaluation by the executor, Standard Webhooks
//! signatures checked by the reference library, retries and the log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::App;
use crate::webhooks::sign_with;

/// Received alerts: (headers as JSON, raw body).
type Inbox = Arc<Mutex<Vec<(Value, String)>>>;

/// The receiver: answers 500 to the first `fail_first` deliveries, then 204.
async fn receiver(fail_first: usize) -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let seen = inbox.clone();
    let app = axum::Router::new().route(
        "/alerts",
        post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let h: serde_json::Map<String, Value> = headers
                    .iter()
                    .filter(|(k, _)| k.as_str().starts_with("webhook-"))
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                    .collect();
                let mut s = seen.lock().unwrap();
                s.push((Value::Object(h), body));
                if s.len() <= fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

async fn wait_for(inbox: &Inbox, n: usize, within: Duration) -> Vec<(Value, String)> {
    let start = Instant::now();
    loop {
        let got = inbox.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < within,
            "{} of {n} alerts after {within:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Verifies one received alert with PyPI `standardwebhooks`; returns the payload.
fn verified(secret: &str, alert: &(Value, String)) -> Value {
    let out = sign_with(
        "python",
        "standardwebhooks_verify.py",
        &[secret, &alert.0.to_string()],
        alert.1.as_bytes(),
    );
    assert_eq!(out["ok"], true, "{out}");
    out["payload"].clone()
}

fn failing_workflow() -> Value {
    json!({
        "nodes": [{"id": "boom", "type": "terminate", "config": {"status": "failed", "output": "{reason: 'bad input'}"}}],
        "edges": []
    })
}

#[tokio::test]
async fn failed_runs_and_failure_rates_alert_signed_with_retries_and_a_log() {
    let app = App::spawn().await;
    app.orchestrator();
    app.executor();
    let owner = app.user("owner").await;
    let pid = app.project(&owner, "alerting").await;
    let wid = app.workflow(&owner, pid, failing_workflow()).await;
    // The first delivery is refused with a 500: it must be retried.
    let (url, inbox) = receiver(1).await;

    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/alerts"),
            &owner.token,
            json!({"name": "failures", "kind": "run_failed", "url": url, "workflow_id": wid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rule = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is shown once.
    let got = app
        .get(&format!("/api/v1/alerts/{rule}"), &owner.token)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("signing_secret").is_none(), "{}", got.text);
    assert!(!got.text.contains(&secret[6..]));

    let run = app.test_run(&owner, wid, json!({"x": 1})).await;
    app.wait_run(&owner, run, &["failed"]).await;

    // First attempt: 500, recorded, scheduled again.
    let first = wait_for(&inbox, 1, Duration::from_secs(20)).await;
    let payload = verified(&secret, &first[0]);
    assert_eq!(payload["type"], "alert.run_failed");
    assert_eq!(payload["run_id"], json!(run));
    assert_eq!(payload["workflow_id"], json!(wid));
    let log_path = format!("/api/v1/alerts/{rule}/deliveries");
    let start = Instant::now();
    let retry = loop {
        let log = app.get(&log_path, &owner.token).await;
        let d = log.body[0].clone();
        if d["last_status_code"] == 500 {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{}", log.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (retry["status"].as_str(), retry["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    // Time passes: the retry is due now.
    sqlx::query("UPDATE meshhook.alert_deliveries SET next_attempt_at = now() WHERE rule_id = $1")
        .bind(Uuid::parse_str(&rule).unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    let both = wait_for(&inbox, 2, Duration::from_secs(10)).await;
    let again = verified(&secret, &both[1]);
    assert_eq!(again, payload, "the retry carries the same alert");
    assert_eq!(
        both[0].0["webhook-id"], both[1].0["webhook-id"],
        "one id across retries"
    );
    let start = Instant::now();
    loop {
        let log = app.get(&log_path, &owner.token).await;
        if log.body[0]["status"] == "delivered" {
            assert_eq!(log.body[0]["attempts"], 2);
            assert_eq!(
                log.body.as_array().unwrap().len(),
                1,
                "one alert per failed run"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{}", log.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A tampered body does not verify with the reference library.
    let mut tampered = both[1].clone();
    tampered.1 = tampered.1.replace("alert.run_failed", "alert.run_fixed");
    let out = std::process::Command::new(
        std::path::PathBuf::from(std::env::var("HOME").unwrap())
            .join(".cache/meshhook/venv/bin/python"),
    )
    .arg(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/signers/standardwebhooks_verify.py"),
    )
    .args([&secret, &tampered.0.to_string()])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .and_then(|mut c| {
        use std::io::Write as _;
        c.stdin.take().unwrap().write_all(tampered.1.as_bytes())?;
        c.wait_with_output()
    })
    .unwrap();
    assert!(!out.status.success(), "a tampered alert must not verify");

    // A test send arrives signed too.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{rule}/test"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let all = wait_for(&inbox, 3, Duration::from_secs(10)).await;
    assert_eq!(verified(&secret, &all[2])["type"], "alert.test");

    // A failure-rate rule (every finished run failed) fires once per cooldown.
    let (url2, inbox2) = receiver(0).await;
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/alerts"),
            &owner.token,
            json!({"name": "rate", "kind": "failure_rate", "url": url2, "threshold": 0.5, "min_runs": 1,
                   "window_secs": 600, "cooldown_secs": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret2 = r.body["signing_secret"].as_str().unwrap().to_owned();
    let got = wait_for(&inbox2, 1, Duration::from_secs(10)).await;
    let p = verified(&secret2, &got[0]);
    assert_eq!(p["type"], "alert.failure_rate");
    assert_eq!(
        (p["failed"].as_i64(), p["finished"].as_i64()),
        (Some(1), Some(1))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        inbox2.lock().unwrap().len(),
        1,
        "the cooldown holds the next one back"
    );
}

#[tokio::test]
async fn alert_rules_follow_roles_tenants_and_validation() {
    let app = App::spawn().await;
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let stranger = app.user("stranger").await;
    let pid = app.project(&owner, "p").await;
    app.add_member(&owner, pid, &viewer, "viewer").await;
    let other = app.project(&stranger, "theirs").await;
    let their_wf = app
        .workflow(&stranger, other, crate::helpers::simple_definition())
        .await;
    let path = format!("/api/v1/projects/{pid}/alerts");
    let good = json!({"name": "lag", "kind": "queue_lag", "url": "https://alerts.example.com/hook", "threshold": 120});

    for (body, field) in [
        (
            json!({"name": "x", "kind": "nope", "url": "https://e.com"}),
            "/kind",
        ),
        (
            json!({"name": "x", "kind": "run_failed", "url": "ftp://e.com"}),
            "/url",
        ),
        (
            json!({"name": "x", "kind": "run_failed", "url": "not a url"}),
            "/url",
        ),
        (
            json!({"name": "", "kind": "run_failed", "url": "https://e.com"}),
            "/name",
        ),
        (
            json!({"name": "x", "kind": "failure_rate", "url": "https://e.com", "threshold": 2}),
            "/threshold",
        ),
        (
            json!({"name": "x", "kind": "failure_rate", "url": "https://e.com", "window_secs": 5}),
            "/window_secs",
        ),
        (
            json!({"name": "x", "kind": "run_failed", "url": "https://e.com", "workflow_id": their_wf}),
            "/workflow_id",
        ),
    ] {
        let r = app.post(&path, &owner.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == field),
            "{body}: {}",
            r.text
        );
    }
    let r = app.post(&path, &viewer.token, good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.post(&path, &stranger.token, good.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    let r = app.post(&path, &owner.token, good).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["threshold"], 120.0);
    let one = format!("/api/v1/alerts/{id}");
    // Viewers read; strangers see nothing.
    assert_eq!(
        app.get(&path, &viewer.token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.get(&one, &viewer.token).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&one, &stranger.token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{one}/deliveries"), &stranger.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Patch: admins only; the kind change drops the old threshold.
    let patch = |t: &str, b: Value| {
        let (app, one, t) = (&app, one.clone(), t.to_owned());
        async move { app.call(Method::PATCH, &one, Some(&t), Some(&b)).await }
    };
    assert_eq!(
        patch(&viewer.token, json!({"enabled": false})).await.status,
        StatusCode::FORBIDDEN
    );
    let r = patch(
        &owner.token,
        json!({"kind": "failure_rate", "enabled": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["kind"].as_str(),
            r.body["threshold"].as_f64(),
            r.body["enabled"].as_bool()
        ),
        (Some("failure_rate"), Some(0.5), Some(false))
    );
    let r = patch(&owner.token, json!({"threshold": 7})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = patch(&owner.token, json!({"bogus": 1})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Tests are for admins; deletes too.
    let r = app
        .call(
            Method::POST,
            &format!("{one}/test"),
            Some(&viewer.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(Method::DELETE, &one, Some(&viewer.token), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, &one, Some(&owner.token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&one, &owner.token).await.status,
        StatusCode::NOT_FOUND
    );
    let log = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &owner.token)
        .await;
    for action in ["alert.create", "alert.update", "alert.delete"] {
        assert!(log.text.contains(action), "{action}: {}", log.text);
    }
}

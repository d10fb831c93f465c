//! `/metrics` (Prometheus text) and `GET /api/v1/projects/{pid}/metrics`.
//! Counters are process-wide and tests run in parallel, so scrapes compare
//! before/after with `>=`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, User, simple_definition};

/// The value of the series `name{labels}` (exact text before the value).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

async fn scrape(app: &App) -> String {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

async fn publish(app: &App, u: &User, wid: Uuid) {
    let r = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn scrape_shows_deliveries_finished_runs_steps_queues_and_pool() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("ops").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    publish(&app, &u, wid).await;
    let hook = app
        .post(
            &format!("/api/v1/workflows/{wid}/webhooks"),
            &u.token,
            json!({"verification": {"scheme": "none"}}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let token = hook.body["token"].as_str().unwrap().to_owned();

    let before = scrape(&app).await;
    for series in [
        "# TYPE meshhook_webhook_deliveries_total counter",
        "# TYPE meshhook_step_duration_seconds histogram",
        "# TYPE meshhook_http_calls_total counter",
        "# TYPE meshhook_runs gauge",
        "# TYPE meshhook_queue_depth gauge",
        "meshhook_queue_oldest_age_seconds{queue=\"orchestrator\"}",
        "meshhook_queue_depth{queue=\"executor\"}",
        "meshhook_db_pool_connections{state=\"idle\"}",
        "meshhook_http_calls_total{outcome=\"timeout\"}",
        "meshhook_db_up 1",
    ] {
        assert!(before.contains(series), "{series} missing:\n{before}");
    }

    let r = app
        .client
        .post(app.url(&format!("/hooks/{token}")))
        .json(&json!({"items": [1, 2], "user": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run: Uuid = r.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app
        .client
        .post(app.url("/hooks/no-such-token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.wait_run(&u, run, &["succeeded"]).await;

    let after = scrape(&app).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert!(moved("meshhook_webhook_deliveries_total{verdict=\"accepted\"}") >= 1.0);
    assert!(moved("meshhook_webhook_deliveries_total{verdict=\"unknown_webhook\"}") >= 1.0);
    assert!(moved("meshhook_runs_finished_total{status=\"succeeded\"}") >= 1.0);
    assert!(moved("meshhook_step_duration_seconds_count{node_type=\"transform\"}") >= 1.0);
    assert!(moved("meshhook_step_duration_seconds_count{node_type=\"terminate\"}") >= 1.0);
    assert!(moved("meshhook_api_requests_total{class=\"2xx\"}") >= 1.0);
    assert!(moved("meshhook_api_request_duration_seconds_count") >= 1.0);
    // Histogram buckets are cumulative: +Inf equals the count.
    assert_eq!(
        sample(
            &after,
            "meshhook_step_duration_seconds_bucket{node_type=\"transform\",le=\"+Inf\"}"
        ),
        sample(
            &after,
            "meshhook_step_duration_seconds_count{node_type=\"transform\"}"
        )
    );
}

fn failing_definition() -> Value {
    json!({
        "nodes": [
            {"id": "check", "type": "transform", "config": {"expression": "trigger.body"}},
            {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{error: 'nope'}"}}
        ],
        "edges": [{"from": "check", "to": "fail"}]
    })
}

#[tokio::test]
async fn project_metrics_from_the_views_and_tenancy() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("owner").await;
    let pid = app.project(&u, "P").await;
    let good = app.workflow(&u, pid, simple_definition()).await;
    let bad = app.workflow(&u, pid, failing_definition()).await;
    let mut runs = Vec::new();
    for i in 0..3 {
        runs.push((
            app.test_run(&u, good, json!({"items": [i], "user": i}))
                .await,
            "succeeded",
        ));
    }
    runs.push((app.test_run(&u, bad, json!({"x": 1})).await, "failed"));
    for (run, want) in &runs {
        app.wait_run(&u, *run, &[want]).await;
    }

    // Current counts are live (nothing unfinished); the rest waits for a
    // refresh of the views.
    let path = format!("/api/v1/projects/{pid}/metrics");
    let r = app.get(&path, &u.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["window"], "24h");
    assert_eq!(r.body["current"]["runs"], json!({}));
    assert_eq!(r.body["current"]["oldest_queued_s"], Value::Null);

    assert!(
        meshhook_db::metrics::refresh_views(&app.db.pool)
            .await
            .unwrap()
    );
    let r = app.get(&format!("{path}?window=1h"), &u.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = &r.body;
    assert_eq!(body["window"], "1h");
    // One hour bucket, unless the runs straddled the turn of an hour.
    let buckets = body["success_rate"].as_array().unwrap();
    assert!((1..=2).contains(&buckets.len()), "{body}");
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (sum("succeeded"), sum("failed"), sum("cancelled")),
        (3, 1, 0)
    );
    if buckets.len() == 1 {
        assert_eq!(buckets[0]["success_rate"], 0.75);
    }
    let wf = |id: Uuid| {
        body["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workflow_id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} missing: {body}"))
            .clone()
    };
    assert_eq!(wf(good)["success_rate"], 1.0);
    assert_eq!(wf(bad)["success_rate"], 0.0);
    assert_eq!(wf(bad)["failed"], 1);

    let latency = body["latency"].as_array().unwrap();
    let node = |w: Uuid, n: &str| {
        latency
            .iter()
            .find(|l| l["workflow_id"] == json!(w) && l["node_id"] == n)
            .unwrap_or_else(|| panic!("{n} missing: {body}"))
            .clone()
    };
    let pick = node(good, "pick");
    assert_eq!(pick["steps"], 3);
    assert_eq!(pick["failed"], 0);
    let (p50, p95, max) = (
        pick["p50_ms"].as_f64().unwrap(),
        pick["p95_ms"].as_f64().unwrap(),
        pick["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 <= p50 && p50 <= p95 && p95 <= max, "{pick}");
    assert_eq!(node(bad, "check")["steps"], 1);

    let failures = body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["workflow_id"], json!(bad));
    assert_eq!(failures[0]["node_id"], "fail");
    assert_eq!(failures[0]["failures"], 1);

    // A viewer reads them; another tenant gets 404, as for a missing
    // project; a bad window is 422.
    let viewer = app.user("viewer").await;
    app.add_member(&u, pid, &viewer, "viewer").await;
    let r = app.get(&path, &viewer.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["failures"].as_array().unwrap().len(), 1);
    let stranger = app.user("stranger").await;
    let other = app.project(&stranger, "theirs").await;
    let r = app.get(&path, &stranger.token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app
        .get(
            &format!("/api/v1/projects/{}/metrics", Uuid::new_v4()),
            &u.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // The stranger's own project shows none of ours.
    let r = app
        .get(
            &format!("/api/v1/projects/{other}/metrics?window=7d"),
            &stranger.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["workflows"], json!([]));
    assert_eq!(r.body["latency"], json!([]));
    assert_eq!(r.body["failures"], json!([]));
    let r = app.get(&format!("{path}?window=2h"), &u.token).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "/window");

    // The views are not readable as `authenticated`: no grant.
    let mut tx = app.db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    let denied = sqlx::query("SELECT 1 FROM meshhook.metrics_step_latency")
        .execute(&mut *tx)
        .await;
    assert!(denied.is_err(), "views must not be granted");
}

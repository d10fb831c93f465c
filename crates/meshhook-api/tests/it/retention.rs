//! Per-project retention settings: `PATCH /api/v1/projects/{pid}`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::App;

#[tokio::test]
async fn retention_days_are_set_by_admins_validated_and_shown() {
    let app = App::spawn().await;
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let stranger = app.user("stranger").await;
    let pid = app.project(&owner, "retained").await;
    app.add_member(&owner, pid, &viewer, "viewer").await;
    let path = format!("/api/v1/projects/{pid}");
    let patch = |token: &str, body: serde_json::Value| {
        let (app, path, token) = (&app, path.clone(), token.to_owned());
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(&body))
                .await
        }
    };

    // The default, on read and in the list.
    let got = app.get(&path, &viewer.token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["retention_days"], 30);

    let r = patch(&owner.token, json!({"retention_days": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["retention_days"], 7);
    assert_eq!(r.body["name"], "retained", "the name is untouched");
    let list = app.get("/api/v1/projects", &owner.token).await;
    let mine = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pid.to_string());
    assert_eq!(mine.unwrap()["retention_days"], 7);

    // Both fields at once.
    let r = patch(
        &owner.token,
        json!({"name": "renamed", "retention_days": 365}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["name"].as_str(), r.body["retention_days"].as_i64()),
        (Some("renamed"), Some(365))
    );

    // Out of range, wrong type, nothing to change, unknown field: 422.
    for bad in [
        json!({"retention_days": 0}),
        json!({"retention_days": 3651}),
        json!({"retention_days": -1}),
        json!({"retention_days": 1.5}),
        json!({"retention_days": "30"}),
        json!({}),
        json!({"retention": 30}),
    ] {
        let r = patch(&owner.token, bad.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert_eq!(r.body["code"], "invalid_body", "{bad}: {}", r.text);
    }
    let r = patch(&owner.token, json!({"retention_days": 0})).await;
    assert_eq!(r.body["errors"][0]["path"], "/retention_days", "{}", r.text);

    // Viewers may not; other tenants do not see the project.
    let r = patch(&viewer.token, json!({"retention_days": 1})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = patch(&stranger.token, json!({"retention_days": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let got = app.get(&path, &owner.token).await;
    assert_eq!(
        got.body["retention_days"], 365,
        "refused changes changed nothing"
    );

    // Audited.
    let log = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &owner.token)
        .await;
    assert!(log.text.contains("project.retention"), "{}", log.text);
}

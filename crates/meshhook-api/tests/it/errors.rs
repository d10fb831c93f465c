//! Server errors: opaque bodies, the request id in a header, one log line
//! carrying that id.

use reqwest::StatusCode;

use crate::helpers::{App, capture_logs};

#[tokio::test]
async fn a_5xx_is_opaque_and_logged_once_with_its_request_id() {
    let logs = capture_logs();
    let app = App::spawn().await;
    let u = app.user("err").await;
    let pid = app.project(&u, "P").await;
    // Break the schema under the API's feet.
    sqlx::query("ALTER TABLE meshhook.api_keys RENAME COLUMN key_prefix TO broken_prefix")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = app
        .get(&format!("/api/v1/projects/{pid}/api-keys"), &u.token)
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["code"], "internal");
    assert!(
        !r.text.contains("broken_prefix") && !r.text.contains("column"),
        "{}",
        r.text
    );
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!request_id.is_empty());
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains(&request_id))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("key_prefix"),
        "the cause is in the log: {}",
        lines[0]
    );
    // A 4xx carries the id too and is not logged as an error.
    let r = app.get("/api/v1/me", "bad").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("x-request-id"));
}

//! Workflows: CRUD on drafts, validation with JSON pointers, publishing
//! (422 when invalid, no duplicate versions), versions, restore, node
//! types, the transform preview.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{App, simple_definition};

#[tokio::test]
async fn draft_validate_publish_versions_restore() {
    let app = App::spawn().await;
    let u = app.user("wf").await;
    let pid = app.project(&u, "P").await;

    // A draft may be invalid; validation reports every problem with a pointer.
    let broken = json!({
        "nodes": [
            {"id": "a", "type": "transform", "config": {"expression": "trigger.body.("}},
            {"id": "b", "type": "http_call", "config": {"url": ""}},
            {"id": "c", "type": "nope", "config": {}}
        ],
        "edges": [{"from": "a", "to": "zzz"}]
    });
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/workflows"),
            &u.token,
            json!({"name": "Orders", "definition": broken}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["name"], "Orders");
    assert!(r.body["updated_at"].is_string());
    let wid = r.body["id"].as_str().unwrap().to_owned();

    let v = app
        .post(
            &format!("/api/v1/workflows/{wid}/validate"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.body["valid"], false);
    let paths: Vec<&str> = v.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in [
        "/nodes/0/config/expression",
        "/nodes/1/config/url",
        "/nodes/2/type",
        "/edges/0/to",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }

    // The editor checks unsaved changes: a definition in the body is
    // checked instead of the saved draft, which stays as it was.
    let unsaved = app
        .post(
            &format!("/api/v1/workflows/{wid}/validate"),
            &u.token,
            json!({"definition": {"nodes": [{"id": "a", "type": "transform", "config": {"expression": "trigger.body"}}], "edges": []}}),
        )
        .await;
    assert_eq!(unsaved.status, StatusCode::OK, "{}", unsaved.text);
    assert_eq!(unsaved.body["valid"], true, "{}", unsaved.text);
    let bad = app
        .post(
            &format!("/api/v1/workflows/{wid}/validate"),
            &u.token,
            json!({"definition": {"nodes": [{"id": "a", "type": "transform", "config": {"expression": "trigger.["}}], "edges": []}}),
        )
        .await;
    assert_eq!(bad.body["valid"], false, "{}", bad.text);
    assert_eq!(bad.body["errors"][0]["path"], "/nodes/0/config/expression");
    let not_object = app
        .post(
            &format!("/api/v1/workflows/{wid}/validate"),
            &u.token,
            json!({"definition": [1]}),
        )
        .await;
    assert_eq!(
        not_object.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        not_object.text
    );
    let still_draft = app
        .post(
            &format!("/api/v1/workflows/{wid}/validate"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(still_draft.body["valid"], false);

    // Publishing it: 422 with the same pointers.
    let p = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.text);
    assert_eq!(p.body["code"], "invalid_definition");
    assert!(p.text.contains("/nodes/1/config/url"));

    // Fix it, publish: v1. Again unchanged: the same v1.
    let r = app
        .put(
            &format!("/api/v1/workflows/{wid}"),
            &u.token,
            json!({"definition": simple_definition()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v1 = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.text);
    assert_eq!(v1.body["version"], 1);
    assert_eq!(v1.body["workflow_id"], json!(wid));
    assert!(v1.body["created_at"].is_string());
    assert_eq!(v1.body["created"], true);
    let again = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(again.body["version"], 1);
    assert_eq!(again.body["id"], v1.body["id"]);
    assert_eq!(again.body["created"], false);
    let w = app.get(&format!("/api/v1/workflows/{wid}"), &u.token).await;
    assert_eq!(w.body["status"], "published");
    assert_eq!(w.body["latest_version"], 1);

    // Change and publish: v2.
    let mut def2 = simple_definition();
    def2["nodes"][0]["config"]["expression"] = json!("{n: `2`}");
    app.put(
        &format!("/api/v1/workflows/{wid}"),
        &u.token,
        json!({"definition": def2}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/workflows/{wid}"), &u.token)
            .await
            .body["status"],
        "draft"
    );
    let v2 = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(v2.body["version"], 2);

    let list = app
        .get(&format!("/api/v1/workflows/{wid}/versions"), &u.token)
        .await;
    let numbers: Vec<i64> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    let one = app
        .get(&format!("/api/v1/workflows/{wid}/versions/1"), &u.token)
        .await;
    assert_eq!(one.body["definition"], simple_definition());
    assert_eq!(
        app.get(&format!("/api/v1/workflows/{wid}/versions/9"), &u.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Rollback: v1 becomes the draft; publishing it finds v1 again.
    let r = app
        .post(
            &format!("/api/v1/workflows/{wid}/versions/1/restore"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["definition"], simple_definition());
    let p = app
        .post(
            &format!("/api/v1/workflows/{wid}/publish"),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(p.body["version"], 1);

    // Versions are immutable even for the service role.
    let e = sqlx::query("UPDATE meshhook.workflow_versions SET version = 7")
        .execute(&app.db.pool)
        .await;
    assert!(e.is_err());

    // List, delete.
    let list = app
        .get(&format!("/api/v1/projects/{pid}/workflows"), &u.token)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(&format!("/api/v1/workflows/{wid}"), &u.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/workflows/{wid}"), &u.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn concurrent_publishes_of_one_draft_make_one_version_and_one_says_created() {
    let app = App::spawn().await;
    let u = app.user("pub-race").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    let path = format!("/api/v1/workflows/{wid}/publish");

    let answers =
        futures::future::join_all((0..8).map(|_| app.post(&path, &u.token, json!({})))).await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["version"], 1, "{}", a.text);
        assert_eq!(a.body["id"], answers[0].body["id"], "{}", a.text);
    }
    let created = answers.iter().filter(|a| a.body["created"] == true).count();
    assert_eq!(created, 1, "exactly one publish made the version");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body["created"] == false)
            .count(),
        7
    );
    let versions = app
        .get(&format!("/api/v1/workflows/{wid}/versions"), &u.token)
        .await;
    assert_eq!(
        versions.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        versions.text
    );
    // One audit entry for the one version.
    let log = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &u.token)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let publishes = log.text.matches("workflow.publish").count();
    assert_eq!(publishes, 1, "{}", log.text);
}

#[tokio::test]
async fn node_types_and_transform_preview() {
    let app = App::spawn().await;
    let u = app.user("nt").await;
    let r = app.get("/api/v1/node-types", &u.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let types: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["transform", "http_call", "branch", "delay", "terminate"]
    );
    for t in r.body.as_array().unwrap() {
        assert!(t["title"].is_string() && t["description"].is_string());
        assert_eq!(t["config_schema"]["type"], "object");
        assert!(t["outputs"].is_array());
    }
    assert_eq!(
        app.call(Method::GET, "/api/v1/node-types", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let ok = app
        .post(
            "/api/v1/preview/transform",
            &u.token,
            json!({"expression": "{n: length(items), first: items[0].name}", "data": {"items": [{"name": "a"}, {"name": "b"}]}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["result"], json!({"n": 2, "first": "a"}));
    let bad = app
        .post(
            "/api/v1/preview/transform",
            &u.token,
            json!({"expression": "items[?name == ", "data": {}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.body["code"], "invalid_expression");
    assert!(
        bad.body["detail"].as_str().unwrap().contains("position"),
        "{}",
        bad.text
    );
}

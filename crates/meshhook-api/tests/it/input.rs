//! The bad-input matrix for every route with a JSON body: malformed JSON
//! (400), wrong content type (415), wrong types, missing and unknown
//! fields (422, naming the field), oversized bodies (413), huge strings
//! (4xx, never 5xx), and hostile-looking strings stored and returned
//! verbatim.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{App, simple_definition};

struct Route {
    method: Method,
    path: String,
    valid: Value,
    /// (field, a value of the wrong type)
    wrong_types: Vec<(&'static str, Value)>,
    /// A string field to blow up.
    string_field: &'static str,
    token: bool,
}

#[tokio::test]
async fn bad_input_matrix() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("input").await;
    let other = app.user("other").await;
    let pid = app.project(&u, "P").await;
    app.add_member(&u, pid, &other, "viewer").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    let rid = app.test_run(&u, wid, json!({"items": []})).await;
    let sid = app
        .post(
            &format!("/api/v1/projects/{pid}/secrets"),
            &u.token,
            json!({"name": "S", "value": "secret-value-123"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = other.id;

    let routes = vec![
        Route {
            method: Method::POST,
            path: "/api/v1/auth/signup".into(),
            valid: json!({"email": "x@example.com", "password": "long enough"}),
            wrong_types: vec![("email", json!(5)), ("password", json!(["a"]))],
            string_field: "email",
            token: false,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/auth/login".into(),
            valid: json!({"email": "x@example.com", "password": "long enough"}),
            wrong_types: vec![("email", json!(true)), ("password", json!({}))],
            string_field: "password",
            token: false,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/auth/refresh".into(),
            valid: json!({"refresh_token": "abc"}),
            wrong_types: vec![("refresh_token", json!(1))],
            string_field: "refresh_token",
            token: false,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/projects".into(),
            valid: json!({"name": "ok"}),
            wrong_types: vec![("name", json!(1))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::PATCH,
            path: format!("/api/v1/projects/{pid}"),
            valid: json!({"name": "ok"}),
            wrong_types: vec![("name", json!(null))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/projects/{pid}/members"),
            valid: json!({"email": "x@example.com", "role": "viewer"}),
            wrong_types: vec![("email", json!(1)), ("role", json!("emperor"))],
            string_field: "email",
            token: true,
        },
        Route {
            method: Method::PATCH,
            path: format!("/api/v1/projects/{pid}/members/{uid}"),
            valid: json!({"role": "viewer"}),
            wrong_types: vec![("role", json!(3))],
            string_field: "role",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/projects/{pid}/api-keys"),
            valid: json!({"name": "k", "role": "viewer"}),
            wrong_types: vec![("name", json!([])), ("role", json!(null))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/projects/{pid}/workflows"),
            valid: json!({"name": "w", "definition": simple_definition()}),
            wrong_types: vec![("name", json!({})), ("definition", json!("nodes"))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::PUT,
            path: format!("/api/v1/workflows/{wid}"),
            valid: json!({"name": "w2"}),
            wrong_types: vec![("name", json!(1.5)), ("definition", json!([1]))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/workflows/{wid}/test-runs"),
            valid: json!({"payload": {"items": []}}),
            wrong_types: vec![("headers", json!("x")), ("query", json!(1))],
            string_field: "headers",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/runs/{rid}/resume"),
            valid: json!({"from_node": "pick"}),
            wrong_types: vec![("from_node", json!(1))],
            string_field: "from_node",
            token: true,
        },
        Route {
            method: Method::POST,
            path: format!("/api/v1/projects/{pid}/secrets"),
            valid: json!({"name": "NEW_ONE", "value": "v-123456789012"}),
            wrong_types: vec![("name", json!(1)), ("value", json!(false))],
            string_field: "name",
            token: true,
        },
        Route {
            method: Method::PUT,
            path: format!("/api/v1/secrets/{sid}"),
            valid: json!({"value": "v-123456789012"}),
            wrong_types: vec![("value", json!({"a": 1}))],
            string_field: "value",
            token: true,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/preview/transform".into(),
            valid: json!({"expression": "a", "data": {"a": 1}}),
            wrong_types: vec![("expression", json!(7))],
            string_field: "expression",
            token: true,
        },
    ];

    for r in &routes {
        let token = r.token.then_some(u.token.as_str());
        let what = |case: &str| format!("{} {} ({case})", r.method, r.path);

        // Malformed JSON.
        for body in [
            &b"{\"name\": "[..],
            b"{,}",
            b"nul",
            b"{\"a\": 1} {\"b\": 2}",
        ] {
            let res = app
                .raw(
                    r.method.clone(),
                    &r.path,
                    token,
                    Some("application/json"),
                    body.to_vec(),
                )
                .await;
            assert_eq!(
                res.status,
                StatusCode::BAD_REQUEST,
                "{}: {}",
                what("malformed"),
                res.text
            );
            assert_eq!(res.body["code"], "malformed_json", "{}", what("malformed"));
        }
        // Wrong or missing content type.
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let res = app
                .raw(
                    r.method.clone(),
                    &r.path,
                    token,
                    ct,
                    r.valid.to_string().into_bytes(),
                )
                .await;
            assert_eq!(
                res.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{}: {}",
                what("content type"),
                res.text
            );
            assert_eq!(res.body["code"], "unsupported_media_type");
        }
        // Unknown field: refused, and named.
        let mut extra = r.valid.clone();
        extra["bogus_field"] = json!(1);
        let res = app
            .call(r.method.clone(), &r.path, token, Some(&extra))
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            what("unknown"),
            res.text
        );
        assert_eq!(res.body["code"], "invalid_body");
        assert!(
            res.text.contains("bogus_field"),
            "{}: {}",
            what("unknown"),
            res.text
        );
        // Not an object; missing fields.
        for body in [json!({}), json!([]), json!(null), json!("text")] {
            let res = app
                .call(r.method.clone(), &r.path, token, Some(&body))
                .await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{} {body}: {}",
                what("shape"),
                res.text
            );
        }
        // Wrong types, with the field's pointer.
        for (field, wrong) in &r.wrong_types {
            let mut body = r.valid.clone();
            body[*field] = wrong.clone();
            let res = app
                .call(r.method.clone(), &r.path, token, Some(&body))
                .await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{} {field}={wrong}: {}",
                what("type"),
                res.text
            );
            assert_eq!(
                res.body["errors"][0]["path"],
                format!("/{field}"),
                "{}",
                res.text
            );
        }
        // A huge string: refused or handled, never a server error.
        let mut huge = r.valid.clone();
        huge[r.string_field] = json!("x".repeat(200_000));
        let res = app
            .call(r.method.clone(), &r.path, token, Some(&huge))
            .await;
        assert!(
            res.status.is_client_error(),
            "{}: {} {}",
            what("huge string"),
            res.status,
            &res.text[..res.text.len().min(300)]
        );
        // Over the body limit: 413.
        let mut big = r.valid.clone();
        big["padding"] = json!("y".repeat(2 * 1024 * 1024));
        let res = app.call(r.method.clone(), &r.path, token, Some(&big)).await;
        assert_eq!(
            res.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            what("too large")
        );
        assert_eq!(res.body["code"], "payload_too_large");
    }
}

#[tokio::test]
async fn hostile_strings_are_stored_and_returned_verbatim() {
    let app = App::spawn().await;
    let u = app.user("hostile").await;
    let sql = "Robert'); DROP TABLE meshhook.projects; -- \u{0}?";
    let sql = sql.replace('\u{0}', "");
    let script = "<script>alert(\"x\")</script><img src=x onerror=alert(1)> é 漢字 🚀";
    let r = app
        .post("/api/v1/projects", &u.token, json!({"name": sql}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["name"], json!(sql));
    let pid = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/api/v1/projects/{pid}"), &u.token).await;
    assert_eq!(got.body["name"], json!(sql));
    assert!(
        got.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let mut definition = simple_definition();
    definition["nodes"][0]["config"]["expression"] = json!(format!("'{script}'"));
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/workflows"),
            &u.token,
            json!({"name": script, "definition": definition}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let wid = r.body["id"].as_str().unwrap().to_owned();
    let w = app.get(&format!("/api/v1/workflows/{wid}"), &u.token).await;
    assert_eq!(w.body["name"], json!(script));
    assert_eq!(w.body["definition"], definition);

    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/api-keys"),
            &u.token,
            json!({"name": "' OR '1'='1", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["name"], "' OR '1'='1");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.projects")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "nothing was dropped");

    // NUL characters cannot be stored: 422, not a server error.
    let mut nul = simple_definition();
    nul["nodes"][0]["config"]["expression"] = json!("'a\u{0}b'");
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/workflows"),
            &u.token,
            json!({"name": "nul", "definition": nul}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Blank and overlong names, control characters.
    for bad in ["", "   ", &"n".repeat(201), "line\nbreak"] {
        let r = app
            .post("/api/v1/projects", &u.token, json!({"name": bad}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["path"], "/name");
    }
    // Path and method errors answer in the error shape too.
    let r = app.get("/api/v1/workflows/not-a-uuid", &u.token).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "invalid_path");
    let r = app
        .call(Method::PATCH, "/api/v1/node-types", Some(&u.token), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["code"], "method_not_allowed");
    let r = app.get("/api/v1/nothing-here", &u.token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "not_found");
}

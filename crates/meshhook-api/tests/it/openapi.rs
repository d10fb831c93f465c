//! The OpenAPI document: valid (parsed by `oas3`, every `$ref` resolves),
//! lists every route the router serves, and every route it lists exists.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::App;

/// Every route of the router (method, path template): the contract's
/// routes, health, and the docs themselves.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/docs"),
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/projects"),
    ("GET", "/api/v1/projects"),
    ("GET", "/api/v1/projects/{pid}"),
    ("PATCH", "/api/v1/projects/{pid}"),
    ("POST", "/api/v1/projects/{pid}/alerts"),
    ("GET", "/api/v1/projects/{pid}/alerts"),
    ("GET", "/api/v1/alerts/{id}"),
    ("PATCH", "/api/v1/alerts/{id}"),
    ("DELETE", "/api/v1/alerts/{id}"),
    ("POST", "/api/v1/alerts/{id}/test"),
    ("GET", "/api/v1/alerts/{id}/deliveries"),
    ("DELETE", "/api/v1/projects/{pid}"),
    ("GET", "/api/v1/projects/{pid}/members"),
    ("POST", "/api/v1/projects/{pid}/members"),
    ("PATCH", "/api/v1/projects/{pid}/members/{user_id}"),
    ("DELETE", "/api/v1/projects/{pid}/members/{user_id}"),
    ("POST", "/api/v1/projects/{pid}/api-keys"),
    ("GET", "/api/v1/projects/{pid}/api-keys"),
    ("DELETE", "/api/v1/projects/{pid}/api-keys/{id}"),
    ("GET", "/api/v1/projects/{pid}/redaction"),
    ("PUT", "/api/v1/projects/{pid}/redaction"),
    ("POST", "/api/v1/projects/{pid}/workflows"),
    ("GET", "/api/v1/projects/{pid}/workflows"),
    ("GET", "/api/v1/workflows/{id}"),
    ("PUT", "/api/v1/workflows/{id}"),
    ("DELETE", "/api/v1/workflows/{id}"),
    ("POST", "/api/v1/workflows/{id}/validate"),
    ("POST", "/api/v1/workflows/{id}/publish"),
    ("GET", "/api/v1/workflows/{id}/versions"),
    ("GET", "/api/v1/workflows/{id}/versions/{n}"),
    ("POST", "/api/v1/workflows/{id}/versions/{n}/restore"),
    ("POST", "/api/v1/workflows/{id}/test-runs"),
    ("GET", "/api/v1/node-types"),
    ("POST", "/api/v1/preview/transform"),
    ("GET", "/api/v1/projects/{pid}/runs"),
    ("GET", "/api/v1/runs/{id}"),
    ("GET", "/api/v1/runs/{id}/events"),
    ("POST", "/api/v1/runs/{id}/resume"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("GET", "/api/v1/runs/{id}/replay"),
    ("GET", "/api/v1/projects/{pid}/dead-letter"),
    ("GET", "/api/v1/runs/{id}/live"),
    ("GET", "/api/v1/projects/{pid}/live"),
    ("POST", "/api/v1/projects/{pid}/secrets"),
    ("GET", "/api/v1/projects/{pid}/secrets"),
    ("GET", "/api/v1/secrets/{id}"),
    ("PUT", "/api/v1/secrets/{id}"),
    ("DELETE", "/api/v1/secrets/{id}"),
    ("GET", "/api/v1/projects/{pid}/audit-log"),
    ("GET", "/api/v1/projects/{pid}/metrics"),
    ("POST", "/api/v1/workflows/{id}/webhooks"),
    ("GET", "/api/v1/workflows/{id}/webhooks"),
    ("GET", "/api/v1/webhooks/{id}"),
    ("PATCH", "/api/v1/webhooks/{id}"),
    ("DELETE", "/api/v1/webhooks/{id}"),
    ("POST", "/api/v1/webhooks/{id}/rotate-secret"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    ("POST", "/api/v1/webhooks/{id}/test"),
    ("POST", "/hooks/{token}"),
];

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg == "{n}" {
                "1".to_owned()
            } else if seg.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_is_valid_and_complete() {
    let app = App::spawn().await;
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let spec = oas3::from_json(&r.text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);

    let listed: Vec<(Method, String)> = spec
        .operations()
        .map(|(path, method, _)| (method, path))
        .collect();
    for (m, p) in ROUTES {
        let m: Method = m.parse().unwrap();
        assert!(
            listed.contains(&(m.clone(), (*p).to_owned())),
            "{m} {p} is not in the OpenAPI document"
        );
    }
    assert_eq!(listed.len(), ROUTES.len(), "{listed:?}");

    // Every operation exists on the router: never the fallback's "no
    // route" nor 405.
    for (method, path) in &listed {
        let res = app.call(method.clone(), &concrete(path), None, None).await;
        assert_ne!(
            res.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            !res.text.contains("no route for"),
            "{method} {path} is documented but not routed"
        );
        let op = spec.operation(method, path).unwrap();
        assert!(
            op.summary.is_some() || op.description.is_some(),
            "{method} {path} undocumented"
        );
    }

    // Every $ref resolves.
    let mut all = Vec::new();
    refs(&r.body, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let pointer = reference.trim_start_matches('#');
        assert!(r.body.pointer(pointer).is_some(), "dangling {reference}");
    }
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());

    // The docs page is self-contained.
    let page = app.call(Method::GET, "/api/docs", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("/api/v1/openapi.json"));
    assert!(!page.text.contains("https://"), "no CDN");
}

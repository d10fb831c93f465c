//! PII redaction: the rules endpoints and their roles, and a webhook run
//! whose trigger carries a Luhn-valid card number, an email and a token:
//! none of them leaves the API (run detail, run list, events, dead letters,
//! delivery log, live frames), while the engine worked on the raw values.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{App, User};

const CARD: &str = "4111111111111111";
const CARD_SPACED: &str = "4111 1111 1111 1111";
const EMAIL: &str = "jane.doe@example.org";
const TOKEN: &str = "sk_live_51HxYzAbCdEfGhIjKlMn";

/// Branches on the raw card number, so the run only succeeds if the engine
/// saw it unredacted; the output echoes it and its length.
fn definition() -> Value {
    json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression":
                "{card: trigger.body.card, digits: length(trigger.body.card), mail: trigger.body.email, note: trigger.body.note}"}},
            {"id": "check", "type": "branch", "config": {"condition": format!("steps.pick.card == '{CARD}'")}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.pick"}},
            {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{card: steps.pick.card}"}}
        ],
        "edges": [
            {"from": "pick", "to": "check"},
            {"from": "check", "to": "done", "label": "true"},
            {"from": "check", "to": "fail", "label": "false"}
        ]
    })
}

fn payload() -> Value {
    json!({
        "card": CARD,
        "email": EMAIL,
        "note": format!("paid with {CARD_SPACED}, receipt to {EMAIL}, key {TOKEN}"),
        "order": "1234567812345678"
    })
}

/// `text` mentions none of the payload's sensitive values.
fn assert_clean(what: &str, text: &str) {
    for raw in [CARD, CARD_SPACED, EMAIL, TOKEN, "Bearer abcdefgh12345678"] {
        assert!(!text.contains(raw), "{what} leaks {raw:?}: {text}");
    }
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(app: &App, path: &str, token: &str) -> Socket {
    let url = app
        .url(&format!("{path}?access_token={token}"))
        .replacen("http://", "ws://", 1);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Raw text frames until one of `run_id` says `last_type`.
async fn frames_until(s: &mut Socket, run_id: Uuid, last_type: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            out.push(t.to_string());
            if v["run_id"] == json!(run_id) && v["type"] == last_type {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn card_numbers_emails_and_tokens_never_leave_the_api() {
    let app = App::spawn().await;
    let u = app.user("owner").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, definition()).await;
    publish(&app, &u, wid).await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{wid}/webhooks"),
            &u.token,
            json!({"verification": {"scheme": "none"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let hook_id = r.body["id"].as_str().unwrap().to_owned();
    let hook_token = r.body["token"].as_str().unwrap().to_owned();

    // A project feed connected before the run starts sees it live.
    let mut live = socket(&app, &format!("/api/v1/projects/{pid}/live"), &u.token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.orchestrator();
    let res = app
        .client
        .post(app.url(&format!("/hooks/{hook_token}?api_key=abcdef123456")))
        .header("x-customer-auth", "Bearer abcdefgh12345678")
        .json(&payload())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let run: Uuid = res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let frames = frames_until(&mut live, run, "run_succeeded").await;
    assert!(frames.len() >= 4, "{frames:?}");
    for f in &frames {
        assert_clean("a project live frame", f);
    }
    assert!(
        frames.iter().any(|f| f.contains("[redacted:card]")),
        "{frames:?}"
    );

    // The engine used the raw values: the branch on the raw card number
    // took `true`, and the length is the raw one.
    let detail = app.wait_run(&u, run, &["succeeded", "failed"]).await;
    let text = detail.to_string();
    assert_eq!(detail["status"], "succeeded", "{text}");
    assert_clean("run detail", &text);
    assert_eq!(detail["output"]["digits"], 16);
    assert_eq!(detail["output"]["card"], "[redacted:card]");
    assert_eq!(detail["output"]["mail"], "[redacted:email]");
    assert_eq!(
        detail["output"]["note"],
        "paid with [redacted:card], receipt to [redacted:email], key [redacted:token]"
    );
    assert_eq!(
        detail["trigger"]["body"]["order"], "1234567812345678",
        "not Luhn-valid: kept"
    );
    assert_eq!(detail["trigger"]["query"]["api_key"], "[redacted:token]");
    assert_eq!(
        detail["trigger"]["headers"]["x-customer-auth"],
        "Bearer [redacted:token]"
    );
    let step = |id: &str| {
        detail["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["node_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(step("check")["output"], json!({"result": true}));
    assert_eq!(step("done")["status"], "succeeded");
    assert_ne!(step("fail")["status"], "succeeded");
    assert_eq!(step("pick")["output"]["card"], "[redacted:card]");
    // The stored log keeps the raw values for the engine.
    let raw: String = sqlx::query_scalar(
        "SELECT string_agg(data::text, ' ') FROM meshhook.events WHERE run_id = $1",
    )
    .bind(run)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(raw.contains(CARD) && raw.contains(EMAIL), "{raw}");

    // Events, the run list, the run feed's backlog, the delivery log.
    let ev = app
        .get(&format!("/api/v1/runs/{run}/events"), &u.token)
        .await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text);
    assert_clean("events", &ev.text);
    assert!(ev.text.contains("[redacted:card]"));
    let list = app
        .get(&format!("/api/v1/projects/{pid}/runs"), &u.token)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_clean("run list", &list.text);
    let mut s = socket(&app, &format!("/api/v1/runs/{run}/live"), &u.token).await;
    let backlog = frames_until(&mut s, run, "run_succeeded").await;
    assert_eq!(backlog.len(), frames.len());
    for f in &backlog {
        assert_clean("a run live frame", f);
    }
    let deliveries = app
        .get(&format!("/api/v1/webhooks/{hook_id}/deliveries"), &u.token)
        .await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.text);
    assert_clean("delivery log", &deliveries.text);

    // A failed run: its error output and its dead-letter reason (here one
    // that quotes the payload, as a remote's error text may) are redacted.
    let failed = app
        .test_run(
            &u,
            wid,
            json!({"card": "5555555555554444", "email": EMAIL, "note": ""}),
        )
        .await;
    let f = app.wait_run(&u, failed, &["failed"]).await;
    assert!(!f.to_string().contains("5555555555554444"), "{f}");
    assert!(f.to_string().contains("[redacted:card]"), "{f}");
    sqlx::query(
        "UPDATE meshhook.runs SET error = jsonb_set(error, '{message}', to_jsonb($2::text)) WHERE id = $1",
    )
    .bind(failed)
    .bind(format!("remote said: card {CARD} of {EMAIL} declined"))
    .execute(&app.db.pool)
    .await
    .unwrap();
    let dl = app
        .get(&format!("/api/v1/projects/{pid}/dead-letter"), &u.token)
        .await;
    assert_eq!(dl.status, StatusCode::OK, "{}", dl.text);
    assert_eq!(
        dl.body[0]["reason"], "remote said: card [redacted:card] of [redacted:email] declined",
        "{}",
        dl.text
    );
    let list = app
        .get(
            &format!("/api/v1/projects/{pid}/runs?status=failed"),
            &u.token,
        )
        .await;
    assert_clean("failed run list", &list.text);
    assert!(list.text.contains("[redacted:card]"), "{}", list.text);
}

#[tokio::test]
async fn changing_the_rules_changes_the_display() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("owner").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, definition()).await;
    let run = app.test_run(&u, wid, payload()).await;
    let first = app.wait_run(&u, run, &["succeeded"]).await;
    assert_eq!(first["output"]["card"], "[redacted:card]");
    let rules = format!("/api/v1/projects/{pid}/redaction");

    // Off: raw values (the cache is dropped by the PUT).
    let r = app.put(&rules, &u.token, json!({"enabled": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["emails"], true, "missing fields take their defaults");
    let raw = app.get(&format!("/api/v1/runs/{run}"), &u.token).await;
    assert_eq!(raw.body["output"]["card"], CARD);
    assert_eq!(raw.body["output"]["mail"], EMAIL);

    // Custom keys and patterns; cards off.
    let custom = json!({
        "enabled": true, "emails": true, "card_numbers": false, "tokens": true,
        "keys": ["DIGITS"], "patterns": [r"\b4\d{15}\b"]
    });
    let r = app.put(&rules, &u.token, custom.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, custom);
    let got = app.get(&rules, &u.token).await;
    assert_eq!(got.body, custom);
    let shown = app.get(&format!("/api/v1/runs/{run}"), &u.token).await;
    assert_eq!(shown.body["output"]["digits"], "[redacted]");
    assert_eq!(shown.body["output"]["card"], "[redacted]");
    assert_eq!(shown.body["output"]["mail"], "[redacted:email]");
    let ev = app
        .get(&format!("/api/v1/runs/{run}/events"), &u.token)
        .await;
    assert!(!ev.text.contains(CARD) && ev.text.contains("[redacted]"));

    // Back to the defaults.
    let r = app.put(&rules, &u.token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let back = app.get(&format!("/api/v1/runs/{run}"), &u.token).await;
    assert_eq!(back.body["output"]["card"], "[redacted:card]");
    assert_eq!(back.body["output"]["digits"], 16);
}

#[tokio::test]
async fn rules_endpoints_follow_roles_tenants_and_validation() {
    let app = App::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let editor = app.user("editor").await;
    let viewer = app.user("viewer").await;
    let stranger = app.user("stranger").await;
    let pid = app.project(&owner, "P").await;
    let theirs = app.project(&stranger, "Q").await;
    for (u, role) in [(&admin, "admin"), (&editor, "editor"), (&viewer, "viewer")] {
        app.add_member(&owner, pid, u, role).await;
    }
    let (_, admin_key) = app.api_key(&owner, pid, "admin").await;
    let (_, editor_key) = app.api_key(&owner, pid, "editor").await;
    let path = format!("/api/v1/projects/{pid}/redaction");
    let defaults = json!({
        "enabled": true, "emails": true, "card_numbers": true, "tokens": true,
        "keys": [], "patterns": []
    });

    // Every member reads the effective rules; the defaults at first.
    for t in [
        &owner.token,
        &admin.token,
        &editor.token,
        &viewer.token,
        &editor_key,
    ] {
        let r = app.get(&path, t).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body, defaults);
    }
    // Owners and admins (and admin keys) write; editors and viewers 403.
    let rules = json!({"keys": ["ssn"], "patterns": [r"\bEMP-\d{6}\b"]});
    for t in [&owner.token, &admin.token, &admin_key] {
        let r = app.put(&path, t, rules.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["keys"], json!(["ssn"]));
    }
    for t in [&editor.token, &viewer.token, &editor_key] {
        let r = app.put(&path, t, rules.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    // Another tenant's project, or none: 404 both ways.
    for p in [
        format!("/api/v1/projects/{theirs}/redaction"),
        format!("/api/v1/projects/{}/redaction", Uuid::new_v4()),
    ] {
        assert_eq!(
            app.get(&p, &owner.token).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.put(&p, &owner.token, json!({})).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        app.get(&path, &stranger.token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::GET, &path, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Malformed JSON 400; wrong shapes 422 with the field.
    let r = app
        .raw(
            Method::PUT,
            &path,
            Some(owner.token.as_str()),
            Some("application/json"),
            b"{\"keys\": [".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.put(&path, &owner.token, json!({"emails": "yes"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["errors"][0]["path"], "/emails");
    let r = app.put(&path, &owner.token, json!({"email": true})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // An invalid regex is 422 with its path, and nothing is stored.
    let r = app
        .put(
            &path,
            &owner.token,
            json!({"patterns": ["ok", "(unclosed"], "keys": [""]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_rules");
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/keys/0", "/patterns/1"], "{}", r.text);
    let still = app.get(&path, &viewer.token).await;
    assert_eq!(still.body["keys"], json!(["ssn"]));

    // Changes are audited.
    let audit = app
        .get(&format!("/api/v1/projects/{pid}/audit-log"), &owner.token)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    assert!(audit.text.contains("project.redaction"), "{}", audit.text);
}

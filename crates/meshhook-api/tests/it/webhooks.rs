//! Webhooks: management (CRUD, roles, isolation, secrets shown once,
//! rotation with grace, the delivery log) and the ingress (every scheme,
//! signed by the real third-party libraries where one exists; body kinds,
//! limits, dedupe under concurrency, rate limits, sync mode).

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::{App, Res, User, simple_definition};

// ---- third-party signers (tests/signers) ----------------------------------

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/meshhook")
}

/// Installs the signers once per machine (tests/signers/install.sh); a
/// registry that cannot be reached fails the test with its message.
fn signers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new("sh")
            .arg(repo().join("tests/signers/install.sh"))
            .output()
            .expect("run tests/signers/install.sh");
        assert!(
            out.status.success(),
            "installing the third-party signers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Runs a signer script with `payload` on stdin; returns its JSON.
pub(crate) fn sign_with(program: &str, script: &str, args: &[&str], payload: &[u8]) -> Value {
    signers();
    let program = match program {
        "python" => cache()
            .join("venv/bin/python")
            .to_string_lossy()
            .into_owned(),
        other => other.to_owned(),
    };
    let mut child = Command::new(program)
        .arg(repo().join("tests/signers").join(script))
        .args(args)
        .env("MESHHOOK_NODE_MODULES", cache().join("node/node_modules"))
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---- harness ---------------------------------------------------------------

struct Setup {
    app: App,
    owner: User,
    project: Uuid,
    workflow: Uuid,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(configure: impl FnOnce(&mut meshhook_api::Settings)) -> Setup {
    let app = App::spawn_with(configure).await;
    let owner = app.user("owner").await;
    let project = app.project(&owner, "hooks").await;
    let workflow = app.workflow(&owner, project, simple_definition()).await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{workflow}/publish"),
            &owner.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Setup {
        app,
        owner,
        project,
        workflow,
    }
}

impl Setup {
    async fn hook(&self, body: Value) -> Res {
        let r = self
            .app
            .post(
                &format!("/api/v1/workflows/{}/webhooks", self.workflow),
                &self.owner.token,
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r
    }

    async fn deliver(&self, token: &str, headers: &[(&str, String)], ct: &str, body: &[u8]) -> Res {
        let mut req = self
            .app
            .client
            .post(self.app.url(&format!("/hooks/{token}")))
            .header("content-type", ct)
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Res {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn runs(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM meshhook.runs WHERE workflow_id = $1")
            .bind(self.workflow)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }
}

fn headers_of(v: &Value) -> Vec<(&'static str, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (&*k.clone().leak(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

const BODY: &[u8] = br#"{"id":"evt_1","items":[1,2],"user":"ada"}"#;

// ---- management ---------------------------------------------------------------

#[tokio::test]
async fn crud_roles_isolation_and_audit() {
    let s = setup().await;
    let app = &s.app;
    let viewer = app.user("viewer").await;
    let editor = app.user("editor").await;
    let stranger = app.user("stranger").await;
    app.add_member(&s.owner, s.project, &viewer, "viewer").await;
    app.add_member(&s.owner, s.project, &editor, "editor").await;

    let path = format!("/api/v1/workflows/{}/webhooks", s.workflow);
    let body =
        json!({"verification": {"scheme": "github"}, "rate_limit": {"per_second": 5, "burst": 10}});
    assert_eq!(
        app.post(&path, &viewer.token, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&path, &stranger.token, body.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.post(&path, &editor.token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let token = r.body["token"].as_str().unwrap();
    assert!(token.len() >= 22, "token has >= 128 bits");
    assert!(
        r.body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/hooks/{token}"))
    );
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);

    // Never again: not in GET, list, PATCH answers.
    let one = app
        .get(&format!("/api/v1/webhooks/{id}"), &viewer.token)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(!one.text.contains(&secret) && one.body.get("signing_secret").is_none());
    let list = app.get(&path, &viewer.token).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(!list.text.contains(&secret));
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}"), &stranger.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&path, &stranger.token).await.status,
        StatusCode::NOT_FOUND
    );

    let patch = |who: &User, body: Value| {
        let id = id.clone();
        let token = who.token.clone();
        async move {
            app.call(
                Method::PATCH,
                &format!("/api/v1/webhooks/{id}"),
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    assert_eq!(
        patch(&viewer, json!({"enabled": false})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(&stranger, json!({"enabled": false})).await.status,
        StatusCode::NOT_FOUND
    );
    let p = patch(
        &editor,
        json!({"enabled": false, "rate_limit": null, "max_body_bytes": 2048}),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.body["enabled"], false);
    assert_eq!(p.body["rate_limit"], Value::Null);
    assert!(!p.text.contains(&secret));
    let bad = patch(&editor, json!({"verification": {"scheme": "stripe"}})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let rot = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &viewer.token,
            json!({}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::FORBIDDEN);
    let rot = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &editor.token,
            json!({}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.text);
    assert_ne!(rot.body["signing_secret"], secret.as_str());

    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &viewer.token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &stranger.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &editor.token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}"), &editor.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let audit = app
        .get(
            &format!("/api/v1/projects/{}/audit-log", s.project),
            &s.owner.token,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "webhook.create",
        "webhook.update",
        "webhook.rotate_secret",
        "webhook.delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(!audit.text.contains(&secret));
    // The database holds no plaintext either.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT signing_keys::text FROM meshhook.webhooks")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(stored.iter().all(|k| !k.contains(&secret)));
}

#[tokio::test]
async fn verification_objects_are_validated_with_pointers() {
    let s = setup().await;
    let path = format!("/api/v1/workflows/{}/webhooks", s.workflow);
    for (body, pointer) in [
        (
            json!({"verification": {"scheme": "hmac_sha256", "header": "bad header", "encoding": "hex"}}),
            "/verification/header",
        ),
        (
            json!({"verification": {"scheme": "jwt", "algorithm": "RS256", "key": "not a pem"}}),
            "/verification/key",
        ),
        (
            json!({"verification": {"scheme": "standard_webhooks"}, "signing_secret": "nope"}),
            "/signing_secret",
        ),
        (
            json!({"verification": {"scheme": "none"}, "mode": {"sync": {"timeout_ms": 0}}}),
            "/mode/sync/timeout_ms",
        ),
        (
            json!({"verification": {"scheme": "none"}, "rate_limit": {"per_second": 0, "burst": 1}}),
            "/rate_limit/per_second",
        ),
        (
            json!({"verification": {"scheme": "none"}, "max_body_bytes": 0}),
            "/max_body_bytes",
        ),
        (
            json!({"verification": {"scheme": "none"}, "payload_schema": {"type": 12}}),
            "/payload_schema",
        ),
    ] {
        let r = s.app.post(&path, &s.owner.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["path"], pointer, "{body}: {}", r.text);
    }
    let r = s
        .app
        .post(
            &path,
            &s.owner.token,
            json!({"verification": {"scheme": "md5"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
}

// ---- schemes -------------------------------------------------------------

#[tokio::test]
async fn standard_webhooks_reference_signer_and_rotation_with_grace() {
    let s = setup().await;
    let r = s
        .hook(json!({"verification": {"scheme": "standard_webhooks"}}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let token = r.body["token"].as_str().unwrap().to_owned();
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&secret[6..])
        .unwrap();
    assert!((24..=32).contains(&raw.len()));

    let ts = now().to_string();
    let signed = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&secret, "msg_a", &ts],
        BODY,
    );
    let ok = s
        .deliver(&token, &headers_of(&signed), "application/json", BODY)
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let run_id = ok.body["run_id"].as_str().unwrap();
    let run = s
        .app
        .get(&format!("/api/v1/runs/{run_id}"), &s.owner.token)
        .await;
    assert_eq!(run.body["trigger"]["body"]["user"], "ada");
    assert!(
        run.body["trigger"]["headers"]
            .get("webhook-signature")
            .is_none()
    );
    assert_eq!(run.body["trigger"]["headers"]["webhook-id"], "msg_a");

    // Refusals, each with its reason.
    let tampered = s
        .deliver(
            &token,
            &headers_of(&signed),
            "application/json",
            br#"{"id":"evt_2"}"#,
        )
        .await;
    assert_eq!(
        (tampered.status, tampered.body["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("no signature matched"))
    );
    let other = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );
    let wrong = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&other, "msg_b", &ts],
        BODY,
    );
    assert_eq!(
        s.deliver(&token, &headers_of(&wrong), "application/json", BODY)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    for skew in [-400, 400] {
        let t = (now() + skew).to_string();
        let h = sign_with(
            "python",
            "standardwebhooks_sign.py",
            &[&secret, "msg_c", &t],
            BODY,
        );
        let r = s
            .deliver(&token, &headers_of(&h), "application/json", BODY)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["detail"], "timestamp outside the 5-minute tolerance");
    }
    let mut missing = headers_of(&signed);
    missing.retain(|(k, _)| *k != "webhook-signature");
    let r = s.deliver(&token, &missing, "application/json", BODY).await;
    assert_eq!(r.body["detail"], "missing header webhook-signature");
    assert!(!r.text.contains(&secret[6..]));

    // Rotate with a grace period: old and new verify, and one header may
    // carry both signatures.
    let rot = s
        .app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &s.owner.token,
            json!({"grace_seconds": 2}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.text);
    let new_secret = rot.body["signing_secret"].as_str().unwrap().to_owned();
    let ts = now().to_string();
    let old = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&secret, "msg_d", &ts],
        BODY,
    );
    assert_eq!(
        s.deliver(&token, &headers_of(&old), "application/json", BODY)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let new = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&new_secret, "msg_e", &ts],
        BODY,
    );
    assert_eq!(
        s.deliver(&token, &headers_of(&new), "application/json", BODY)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let both_old = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&secret, "msg_f", &ts],
        BODY,
    );
    let both_new = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&other, "msg_f", &ts],
        BODY,
    );
    let mut h = headers_of(&both_old);
    let joined = format!(
        "{} {}",
        both_new["webhook-signature"].as_str().unwrap(),
        both_old["webhook-signature"].as_str().unwrap()
    );
    h.retain(|(k, _)| *k != "webhook-signature");
    h.push(("webhook-signature", joined));
    assert_eq!(
        s.deliver(&token, &h, "application/json", BODY).await.status,
        StatusCode::ACCEPTED
    );

    tokio::time::sleep(Duration::from_millis(2600)).await;
    let ts = now().to_string();
    let old = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&secret, "msg_g", &ts],
        BODY,
    );
    assert_eq!(
        s.deliver(&token, &headers_of(&old), "application/json", BODY)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let new = sign_with(
        "python",
        "standardwebhooks_sign.py",
        &[&new_secret, "msg_h", &ts],
        BODY,
    );
    assert_eq!(
        s.deliver(&token, &headers_of(&new), "application/json", BODY)
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn github_signed_by_octokit() {
    let s = setup().await;
    let r = s.hook(json!({"verification": {"scheme": "github"}})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    let mut h = headers_of(&sign_with("node", "github_sign.mjs", &[&secret], BODY));
    h.push(("x-github-delivery", "d-1".into()));
    let ok = s.deliver(&token, &h, "application/json", BODY).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let again = s.deliver(&token, &h, "application/json", BODY).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["run_id"], ok.body["run_id"]);
    let bad = s.deliver(&token, &h, "application/json", b"{}").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let wrong = headers_of(&sign_with(
        "node",
        "github_sign.mjs",
        &["not-the-secret"],
        BODY,
    ));
    assert_eq!(
        s.deliver(&token, &wrong, "application/json", BODY)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let none = s.deliver(&token, &[], "application/json", BODY).await;
    assert_eq!(none.body["detail"], "missing header x-hub-signature-256");
}

#[tokio::test]
async fn stripe_signed_by_the_stripe_library() {
    let s = setup().await;
    let r = s.hook(json!({"verification": {"scheme": "stripe"}})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    let h = headers_of(&sign_with("node", "stripe_sign.mjs", &[&secret], BODY));
    let ok = s.deliver(&token, &h, "application/json", BODY).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    // The event id dedupes (a retry from Stripe is signed anew).
    let h2 = headers_of(&sign_with("node", "stripe_sign.mjs", &[&secret], BODY));
    let again = s.deliver(&token, &h2, "application/json", BODY).await;
    assert_eq!(
        (again.status, &again.body["run_id"]),
        (StatusCode::OK, &ok.body["run_id"])
    );
    assert_eq!(
        s.deliver(&token, &h, "application/json", b"{\"id\":\"x\"}")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    for skew in [-400i64, 400] {
        let t = (now() + skew).to_string();
        let h = headers_of(&sign_with("node", "stripe_sign.mjs", &[&secret, &t], BODY));
        let r = s.deliver(&token, &h, "application/json", BODY).await;
        assert_eq!(
            r.body["detail"], "timestamp outside the 5-minute tolerance",
            "{}",
            r.text
        );
    }
    // Two v1 signatures, one by the right secret.
    let t = now().to_string();
    let good = hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", BODY]);
    let bad = hmac_hex(b"old", &[t.as_bytes(), b".", BODY]);
    let r = s
        .deliver(
            &token,
            &[
                ("stripe-signature", format!("t={t},v1={bad},v1={good}")),
                ("idempotency-key", "k2".into()),
            ],
            "application/json",
            BODY,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
}

#[tokio::test]
async fn slack_documented_vector_with_a_pinned_clock() {
    let at = chrono::DateTime::from_timestamp(1531420618 + 10, 0).unwrap();
    let s = setup_with(|st| st.clock = meshhook_api::hooks::Clock::Fixed(at)).await;
    let r = s
        .hook(json!({"verification": {"scheme": "slack"}, "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}))
        .await;
    assert!(
        r.body.get("signing_secret").is_none(),
        "a given secret is not echoed"
    );
    let token = r.body["token"].as_str().unwrap().to_owned();
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let h = [
        ("x-slack-request-timestamp", "1531420618".to_owned()),
        (
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".to_owned(),
        ),
    ];
    let ok = s
        .deliver(&token, &h, "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let run = s
        .app
        .get(
            &format!("/api/v1/runs/{}", ok.body["run_id"].as_str().unwrap()),
            &s.owner.token,
        )
        .await;
    assert_eq!(
        run.body["trigger"]["body"]["command"], "/webhook-collect",
        "form bodies become objects"
    );
    let r = s
        .deliver(&token, &h, "application/x-www-form-urlencoded", &body[1..])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let stale = [
        ("x-slack-request-timestamp", "1531420000".to_owned()),
        h[1].clone(),
    ];
    let r = s
        .deliver(&token, &stale, "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(r.body["detail"], "timestamp outside the 5-minute tolerance");
}

#[tokio::test]
async fn generic_hmac_and_text_bodies() {
    let s = setup().await;
    let r = s
        .hook(json!({"verification": {"scheme": "hmac_sha256", "header": "X-Signature", "encoding": "base64", "prefix": "sha256="}}))
        .await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let secret = r.body["signing_secret"].as_str().unwrap().to_owned();
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(b"hello there");
    let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    let ok = s
        .deliver(
            &token,
            &[("x-signature", format!("sha256={sig}"))],
            "text/plain",
            b"hello there",
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let run = s
        .app
        .get(
            &format!("/api/v1/runs/{}?x=1", ok.body["run_id"].as_str().unwrap()),
            &s.owner.token,
        )
        .await;
    assert_eq!(run.body["trigger"]["body"], "hello there");
    let no_prefix = s
        .deliver(
            &token,
            &[("x-signature", sig.clone())],
            "text/plain",
            b"hello there",
        )
        .await;
    assert_eq!(
        no_prefix.body["detail"],
        "X-Signature must start with sha256="
    );
    assert_eq!(
        s.deliver(
            &token,
            &[("x-signature", format!("sha256={sig}"))],
            "text/plain",
            b"hello"
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn jwt_schemes_with_pyjwt() {
    let s = setup().await;
    // HS256 with issuer and audience.
    let key = "a-shared-jwt-secret-of-32-bytes!";
    let r = s
        .hook(json!({"verification": {"scheme": "jwt", "algorithm": "HS256", "key": key, "issuer": "acme", "audience": "meshhook"}}))
        .await;
    assert!(!r.text.contains(key), "the key is write-only");
    let token = r.body["token"].as_str().unwrap().to_owned();
    let claims = |extra: Value| {
        let mut c = json!({"iss": "acme", "aud": "meshhook", "exp": now() + 60});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c.to_string()
    };
    let sign = |alg: &str, key: &str, c: String| {
        sign_with("python", "jwt_sign.py", &["sign", alg, key, &c], b"")
    };
    let ok = s
        .deliver(
            &token,
            &headers_of(&sign("HS256", key, claims(json!({})))),
            "application/json",
            BODY,
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    for (c, why) in [
        (
            claims(json!({"exp": now() - 120})),
            "the token has expired (exp)",
        ),
        (
            claims(json!({"nbf": now() + 120})),
            "the token is not valid yet (nbf)",
        ),
        (
            claims(json!({"iss": "evil"})),
            "the token's issuer (iss) is not the configured one",
        ),
        (
            claims(json!({"aud": "other"})),
            "the token's audience (aud) is not the configured one",
        ),
    ] {
        let r = s
            .deliver(
                &token,
                &headers_of(&sign("HS256", key, c)),
                "application/json",
                BODY,
            )
            .await;
        assert_eq!(
            (r.status, r.body["detail"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(why))
        );
    }
    let r = s
        .deliver(
            &token,
            &headers_of(&sign(
                "HS256",
                "another-secret-of-enough-length",
                claims(json!({})),
            )),
            "application/json",
            BODY,
        )
        .await;
    assert_eq!(r.body["detail"], "no signature matched");
    assert_eq!(
        s.deliver(&token, &[], "application/json", BODY).await.body["detail"],
        "missing header authorization"
    );

    // ES256 and RS256 with PEM public keys; the algorithm is pinned.
    for alg in ["ES256", "RS256"] {
        let keys = sign_with("python", "jwt_sign.py", &["keygen", alg], b"");
        let r = s
            .hook(
                json!({"verification": {"scheme": "jwt", "algorithm": alg, "key": keys["public"]}}),
            )
            .await;
        let token = r.body["token"].as_str().unwrap().to_owned();
        let c = json!({"exp": now() + 60}).to_string();
        let ok = s
            .deliver(
                &token,
                &headers_of(&sign(alg, keys["private"].as_str().unwrap(), c.clone())),
                "application/json",
                BODY,
            )
            .await;
        assert_eq!(ok.status, StatusCode::ACCEPTED, "{alg}: {}", ok.text);
        let hs = s
            .deliver(
                &token,
                &headers_of(&sign("HS256", "some-secret-0123456789-abcdef", c)),
                "application/json",
                BODY,
            )
            .await;
        assert_eq!(hs.status, StatusCode::UNAUTHORIZED, "{alg}");
    }
}

// ---- payload, limits, states --------------------------------------------

#[tokio::test]
async fn bodies_schema_limits_methods_and_states() {
    let s = setup().await;
    let r = s
        .hook(json!({
            "verification": {"scheme": "none"},
            "max_body_bytes": 64,
            "payload_schema": {"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}
        }))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(r.body.get("signing_secret").is_none());
    let ok = s
        .deliver(&token, &[], "application/json", br#"{"user":"ada"}"#)
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    let bad = s
        .deliver(&token, &[], "application/json", br#"{"user":7}"#)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.body["errors"][0]["path"], "/user");
    let malformed = s.deliver(&token, &[], "application/json", b"{nope").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let big = s
        .deliver(&token, &[], "application/json", &[b' '; 65])
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    for m in [Method::PUT, Method::PATCH] {
        let r = s
            .app
            .raw(
                m,
                &format!("/hooks/{token}?a=1"),
                None,
                Some("application/json"),
                br#"{"user":"b"}"#.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let get = s
        .app
        .call(Method::GET, &format!("/hooks/{token}"), None, None)
        .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers["allow"], "POST, PUT, PATCH");
    assert_eq!(
        s.deliver("wh_unknown", &[], "application/json", b"{}")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let p = s
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&s.owner.token),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    let off = s
        .deliver(&token, &[], "application/json", br#"{"user":"ada"}"#)
        .await;
    assert_eq!(
        (off.status, off.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("webhook_disabled"))
    );

    // A workflow never published.
    let draft = s
        .app
        .workflow(&s.owner, s.project, simple_definition())
        .await;
    let r = s
        .app
        .post(
            &format!("/api/v1/workflows/{draft}/webhooks"),
            &s.owner.token,
            json!({"verification": {"scheme": "none"}}),
        )
        .await;
    let t = r.body["token"].as_str().unwrap();
    let np = s.deliver(t, &[], "application/json", b"{}").await;
    assert_eq!(
        (np.status, np.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("workflow_not_published"))
    );

    // The delivery log, newest first, keyset-paged.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = s
            .app
            .get(
                &format!("/api/v1/webhooks/{id}/deliveries?limit=2{q}"),
                &s.owner.token,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            seen.push((
                item["verdict"].as_str().unwrap().to_owned(),
                item["status"].as_i64().unwrap(),
            ));
            assert!(item["time"].is_string() && item["latency_ms"].is_number());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen[0], ("disabled".to_owned(), 409));
    for v in ["accepted", "invalid_payload", "too_large"] {
        assert!(seen.iter().any(|(x, _)| x == v), "{v} in {seen:?}");
    }
    let outsider = s.app.user("outsider").await;
    assert_eq!(
        s.app
            .get(
                &format!("/api/v1/webhooks/{id}/deliveries"),
                &outsider.token
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn twenty_concurrent_identical_deliveries_start_one_run() {
    let s = setup().await;
    let r = s.hook(json!({"verification": {"scheme": "none"}})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = s.app.client.clone();
        let url = s.app.url(&format!("/hooks/{token}"));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("idempotency-key", "same")
                .json(&json!({"n": 1}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut accepted = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status} {body}"
        );
        if status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            assert_eq!(body["duplicate"], true);
        }
        ids.insert(body["run_id"].as_str().unwrap().to_owned());
    }
    assert_eq!((accepted, ids.len()), (1, 1));
    assert_eq!(s.runs().await, 1);
}

#[tokio::test]
async fn rate_limit_burst_then_429_then_accepted_again() {
    let s = setup().await;
    let r = s.hook(json!({"verification": {"scheme": "none"}, "rate_limit": {"per_second": 2, "burst": 3}})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(
            s.deliver(&token, &[], "application/json", b"{}")
                .await
                .status,
            StatusCode::ACCEPTED
        );
    }
    let limited = s.deliver(&token, &[], "application/json", b"{}").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.headers["x-ratelimit-limit"], "3");
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    assert!(
        limited.headers["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        s.deliver(&token, &[], "application/json", b"{}")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(s.runs().await, 4);
}

#[tokio::test]
async fn sync_mode_answers_the_terminate_output_and_times_out_to_202() {
    let s = setup().await;
    s.app.orchestrator();
    let r = s
        .hook(json!({"verification": {"scheme": "none"}, "mode": {"sync": {"timeout_ms": 10000}}}))
        .await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let ok = s
        .deliver(
            &token,
            &[],
            "application/json",
            br#"{"items":[1,2,3],"user":"ada"}"#,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body, json!({"n": 3, "who": "ada"}));

    // A failing terminate whose output names a status.
    let failing = s
        .app
        .workflow(
            &s.owner,
            s.project,
            json!({"nodes": [{"id": "no", "type": "terminate", "config": {"status": "failed", "output": "{status: `418`, reason: 'teapot'}"}}], "edges": []}),
        )
        .await;
    s.app
        .post(
            &format!("/api/v1/workflows/{failing}/publish"),
            &s.owner.token,
            json!({}),
        )
        .await;
    let r = s
        .app
        .post(
            &format!("/api/v1/workflows/{failing}/webhooks"),
            &s.owner.token,
            json!({"verification": {"scheme": "none"}, "mode": {"sync": {"timeout_ms": 10000}}}),
        )
        .await;
    let t = r.body["token"].as_str().unwrap();
    let teapot = s.deliver(t, &[], "application/json", b"{}").await;
    assert_eq!(teapot.status.as_u16(), 418, "{}", teapot.text);
    assert_eq!(teapot.body["reason"], "teapot");

    // No orchestrator answers in time: 202 with the run id.
    let slow = setup().await;
    let r = slow
        .hook(json!({"verification": {"scheme": "none"}, "mode": {"sync": {"timeout_ms": 300}}}))
        .await;
    let t = r.body["token"].as_str().unwrap();
    let started = std::time::Instant::now();
    let late = slow.deliver(t, &[], "application/json", b"{}").await;
    assert_eq!(late.status, StatusCode::ACCEPTED, "{}", late.text);
    assert!(late.body["run_id"].is_string());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn test_endpoint_sends_a_signed_delivery_to_itself() {
    let s = setup().await;
    for v in [
        json!({"scheme": "standard_webhooks"}),
        json!({"scheme": "github"}),
        json!({"scheme": "stripe"}),
        json!({"scheme": "slack"}),
    ] {
        let r = s.hook(json!({"verification": v})).await;
        let id = r.body["id"].as_str().unwrap();
        let t = s
            .app
            .post(
                &format!("/api/v1/webhooks/{id}/test"),
                &s.owner.token,
                json!({"payload": {"user": "ada"}}),
            )
            .await;
        assert_eq!(t.status, StatusCode::OK, "{v}: {}", t.text);
        assert_eq!(t.body["status"], 202, "{v}: {}", t.text);
        assert!(t.body["body"]["run_id"].is_string());
    }
}

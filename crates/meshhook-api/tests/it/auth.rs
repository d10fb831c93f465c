//! Sign-up, login, tokens (expired, tampered, `alg: none`, wrong audience,
//! Supabase-issued), refresh rotation and reuse detection, rate limits,
//! API keys.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{App, JWT_SECRET};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn supabase_claims(sub: Uuid, email: &str) -> Value {
    json!({
        "aud": "authenticated", "exp": now() + 3600, "iat": now(),
        "iss": "https://abcdefgh.supabase.co/auth/v1", "sub": sub, "email": email,
        "phone": "", "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {}, "role": "authenticated", "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now()}], "session_id": Uuid::new_v4(),
        "is_anonymous": false
    })
}

#[tokio::test]
async fn signup_login_me() {
    let app = App::spawn().await;
    let u = app.user("alice").await;
    let me = app.get("/api/v1/me", &u.token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], json!(u.id));
    assert_eq!(me.body["email"], json!(u.email));

    // The same email again (case differs): 409.
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(&json!({"email": u.email.to_uppercase(), "password": "another password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.body["code"], "email_taken");

    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": u.email, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["user"]["id"], json!(u.id));
    let token = login.body["access_token"].as_str().unwrap();
    // Supabase-shaped claims.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], json!(u.id));
    assert_eq!(claims["email"], json!(u.email));
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["aud"], "authenticated");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 3600);

    // Password rules.
    for bad in ["short", "        ", &"x".repeat(1025)] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(&json!({"email": "new@example.com", "password": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["errors"][0]["path"], "/password");
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(&json!({"email": "not an email", "password": "long enough"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
}

#[tokio::test]
async fn wrong_email_and_wrong_password_look_the_same() {
    let app = App::spawn().await;
    let u = app.user("bob").await;
    let wrong_password = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": u.email, "password": "not the password"})),
        )
        .await;
    let wrong_email = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "nobody@example.com", "password": "not the password"})),
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_email.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body, wrong_email.body);
    assert_eq!(wrong_password.body["code"], "invalid_credentials");
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_email_and_per_ip() {
    let app = App::spawn_with(|s| {
        s.login_limits = meshhook_api::auth::LoginLimits {
            per_email: 3,
            per_ip: 5,
            window: Duration::from_secs(600),
        };
    })
    .await;
    let u = app.user("carol").await;
    let attempt = |email: String, password: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await
        }
    };
    for _ in 0..3 {
        let r = attempt(u.email.clone(), "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The email is locked, even with the right password.
    let r = attempt(u.email.clone(), "correct horse battery").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=601).contains(&retry), "{retry}");
    assert_eq!(r.body["code"], "rate_limited");
    // Other emails from the same address: two more failures, then the
    // address is locked too.
    for i in 0..2 {
        let r = attempt(format!("other{i}@example.com"), "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = attempt("another@example.com".into(), "wrong password!").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = App::spawn().await;
    let u = app.user("dave").await;
    let base = json!({"sub": u.id, "email": u.email, "role": "authenticated", "aud": "authenticated",
                      "iat": now(), "exp": now() + 600});
    let mut expired = base.clone();
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = base.clone();
    wrong_aud["aud"] = json!("anon");
    let mut service = base.clone();
    service["role"] = json!("service_role");
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let header_none = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = B64.encode(serde_json::to_vec(&base).unwrap());
    let good = sign(&base, JWT_SECRET);
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_body = B64.encode(
        serde_json::to_vec(&json!({"sub": Uuid::new_v4(), "role": "authenticated",
            "aud": "authenticated", "exp": now() + 600}))
        .unwrap(),
    );
    parts[1] = &tampered_body;
    let tampered = parts.join(".");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &base,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();

    let cases = [
        ("expired", sign(&expired, JWT_SECRET)),
        (
            "wrong signature",
            sign(&base, "some-other-secret-0123456789-abcdefgh"),
        ),
        ("alg none", format!("{header_none}.{body}.")),
        (
            "alg none, signature kept",
            format!("{header_none}.{body}.{}", good.split('.').nth(2).unwrap()),
        ),
        ("wrong audience", sign(&wrong_aud, JWT_SECRET)),
        ("service role", sign(&service, JWT_SECRET)),
        ("no exp", sign(&no_exp, JWT_SECRET)),
        ("tampered payload", tampered),
        ("HS512", hs512),
        ("garbage", "not.a.token".into()),
        ("unknown API key", "mh_doesnotexist".into()),
    ];
    for (name, token) in cases {
        let r = app.get("/api/v1/me", &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text);
        assert_eq!(r.body["code"], "unauthorized", "{name}");
    }
    let r = app.call(Method::GET, "/api/v1/projects", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .get(app.url("/api/v1/projects"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The untampered token works.
    assert_eq!(app.get("/api/v1/me", &good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_supabase_token_signed_with_the_secret_is_accepted() {
    let app = App::spawn().await;
    let sub = Uuid::new_v4();
    let token = sign(&supabase_claims(sub, "supa@example.com"), JWT_SECRET);
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], json!(sub));
    // The user row was created on first sight: they can own a project and
    // be found by email.
    let r = app
        .post("/api/v1/projects", &token, json!({"name": "from supabase"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.body["id"].as_str().unwrap();
    let members = app
        .get(&format!("/api/v1/projects/{pid}/members"), &token)
        .await;
    assert_eq!(members.body[0]["email"], "supa@example.com");
    assert_eq!(members.body[0]["role"], "owner");
    // They have no password here.
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "supa@example.com", "password": "whatever it is"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = App::spawn().await;
    let u = app.user("erin").await;
    let refresh = |t: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(&json!({"refresh_token": t})),
            )
            .await
        }
    };
    let r1 = refresh(u.refresh.clone()).await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.text);
    let t1 = r1.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, u.refresh);
    assert_eq!(
        app.get("/api/v1/me", r1.body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let r2 = refresh(t1.clone()).await;
    assert_eq!(r2.status, StatusCode::OK);
    let t2 = r2.body["refresh_token"].as_str().unwrap().to_owned();

    // Reusing t1 (already used): refused, and the whole family dies, so
    // the legitimate newest token t2 stops working too.
    let reuse = refresh(t1).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reuse.body["code"], "refresh_token_reused");
    let after = refresh(t2).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);

    // Stored hashed, never in the clear.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.refresh_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'",
    )
    .bind(&u.refresh[..16])
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // A new login is a new family; logout revokes it.
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": u.email, "password": "correct horse battery"})),
        )
        .await;
    let t = login.body["refresh_token"].as_str().unwrap().to_owned();
    let out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(&json!({"refresh_token": t})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(refresh(t).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh("unknown".into()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn api_keys_act_in_their_project_and_can_be_revoked() {
    let app = App::spawn().await;
    let owner = app.user("frank").await;
    let pid = app.project(&owner, "keys").await;
    let (kid, key) = app.api_key(&owner, pid, "editor").await;
    assert!(key.starts_with("mh_"));

    let me = app.get("/api/v1/me", &key).await;
    assert_eq!(me.body["kind"], "api_key");
    assert_eq!(me.body["role"], "editor");
    let projects = app.get("/api/v1/projects", &key).await;
    assert_eq!(projects.body.as_array().unwrap().len(), 1);
    assert_eq!(projects.body[0]["role"], "editor");
    // Editors create workflows; keys never create projects.
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/workflows"),
            &key,
            json!({"name": "by key"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post("/api/v1/projects", &key, json!({"name": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Listed with prefix and last use, never the key; stored hashed.
    let list = app
        .get(&format!("/api/v1/projects/{pid}/api-keys"), &owner.token)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains(&key));
    assert!(list.body[0]["last_used_at"].is_string(), "{}", list.text);
    assert_eq!(list.body[0]["prefix"], json!(&key[..10]));
    let raw: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.api_keys WHERE key_prefix = $1 AND key_hash = sha256(convert_to($2, 'UTF8'))",
    )
    .bind(&key[..10])
    .bind(&key)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(raw, 1);

    let r = app
        .delete(
            &format!("/api/v1/projects/{pid}/api-keys/{kid}"),
            &owner.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A key never outranks its creator, and is at most admin.
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/api-keys"),
            &owner.token,
            json!({"name": "k", "role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

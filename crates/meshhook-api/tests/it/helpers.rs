//! The test harness: a fresh migrated database and the API served on
//! 127.0.0.1:0 per test, a reqwest client, and shortcuts for the common
//! calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use meshhook_api::{Context, Settings};
use meshhook_db::testing::TestDb;
use meshhook_db::vault::Keyring;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-abcdefghijklmnop";

pub fn kek_spec(id: &str, byte: u8) -> String {
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

pub fn keyring() -> Keyring {
    Keyring::parse(&kek_spec("k1", 7), &[]).unwrap()
}

pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    shutdown: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

/// A response: status, headers, parsed JSON body (Null when empty or not
/// JSON) and the raw text.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl App {
    pub async fn spawn() -> App {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> App {
        let db = TestDb::new().await;
        let mut settings = Settings {
            jwt_secret: Some(meshhook_api::auth::JwtSecret::new(JWT_SECRET)),
            keyring: Some(Arc::new(keyring())),
            ..Settings::default()
        };
        configure(&mut settings);
        let ctx = Context {
            pool: db.pool.clone(),
            settings: Arc::new(settings),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(meshhook_api::serve(ctx, listener, shutdown.clone()));
        App {
            base,
            client: reqwest::Client::new(),
            db,
            shutdown,
        }
    }

    /// Starts the server's graceful shutdown (as SIGTERM does).
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Res {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        into_res(req.send().await.unwrap()).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Res {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        into_res(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.call(Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Res {
        self.call(Method::PUT, path, Some(token), Some(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Res {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up a fresh user.
    pub async fn user(&self, name: &str) -> User {
        let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(&json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        User {
            id: r.body["user"]["id"].as_str().unwrap().parse().unwrap(),
            email,
            token: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh: r.body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a project owned by `owner`.
    pub async fn project(&self, owner: &User, name: &str) -> Uuid {
        let r = self
            .post("/api/v1/projects", &owner.token, json!({"name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Adds `user` to `project` with `role` (as `admin`).
    pub async fn add_member(&self, admin: &User, project: Uuid, user: &User, role: &str) {
        let r = self
            .post(
                &format!("/api/v1/projects/{project}/members"),
                &admin.token,
                json!({"email": user.email, "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Creates an API key; returns (id, key).
    pub async fn api_key(&self, admin: &User, project: Uuid, role: &str) -> (Uuid, String) {
        let r = self
            .post(
                &format!("/api/v1/projects/{project}/api-keys"),
                &admin.token,
                json!({"name": format!("{role} key"), "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["id"].as_str().unwrap().parse().unwrap(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a workflow with `definition`; returns its id.
    pub async fn workflow(&self, user: &User, project: Uuid, definition: Value) -> Uuid {
        let r = self
            .post(
                &format!("/api/v1/projects/{project}/workflows"),
                &user.token,
                json!({"name": "wf", "definition": definition}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Starts a test run of the workflow's draft; returns the run id.
    pub async fn test_run(&self, user: &User, workflow: Uuid, payload: Value) -> Uuid {
        let r = self
            .post(
                &format!("/api/v1/workflows/{workflow}/test-runs"),
                &user.token,
                json!({"payload": payload}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["run_id"].as_str().unwrap().parse().unwrap()
    }

    /// Polls `GET /runs/{id}` until its status is one of `want`.
    pub async fn wait_run(&self, user: &User, run: Uuid, want: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(&format!("/api/v1/runs/{run}"), &user.token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            if want.contains(&r.body["status"].as_str().unwrap()) {
                return r.body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "run {run} still {} ({})",
                r.body["status"],
                r.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts an orchestrator worker in-process; it stops with the app.
    pub fn orchestrator(&self) {
        let mut ctx = meshhook_orchestrator::Context::new(self.db.pool.clone());
        ctx.options.poll = Duration::from_millis(100);
        tokio::spawn(meshhook_orchestrator::run(ctx, self.shutdown.clone()));
    }

    /// Starts an HTTP executor worker in-process (loopback allowed).
    pub fn executor(&self) {
        let egress = meshhook_executor::egress::Egress::parse("127.0.0.0/8").unwrap();
        let options = meshhook_executor::Options {
            poll: Duration::from_millis(100),
            alerts_every: Duration::from_millis(200),
            ..meshhook_executor::Options::default()
        };
        let ctx = meshhook_executor::Context::new(
            self.db.pool.clone(),
            Arc::new(keyring()),
            Arc::new(egress),
            options,
        )
        .unwrap();
        tokio::spawn(meshhook_executor::run(ctx, self.shutdown.clone()));
    }
}

async fn into_res(r: reqwest::Response) -> Res {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Res {
        status,
        headers,
        body,
        text,
    }
}

/// A valid definition: transform -> terminate.
pub fn simple_definition() -> Value {
    json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "{n: length(trigger.body.items), who: trigger.body.user}"}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.pick"}}
        ],
        "edges": [{"from": "pick", "to": "done"}]
    })
}

/// Log lines captured from the current thread (tests run on a
/// current-thread runtime, so the app's tasks log here too). Dropping it
/// stops the capture.
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

/// Appends to the current thread's capture buffer, if any.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(b) = &*c.borrow() {
                b.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log event (TRACE and up, `log` records included) of
/// this thread until the returned [`Logs`] drops. One global subscriber
/// serves every test (per-thread scoped subscribers lose events to
/// tracing's global callsite-interest cache when tests run in parallel);
/// its filter passes only events of capturing threads.
pub fn capture_logs() -> Logs {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                CAPTURE.with(|c| c.borrow().is_some())
            }));
        let _ = tracing_subscriber::registry().with(layer).try_init();
    });
    let buf = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|c| *c.borrow_mut() = Some(buf.clone()));
    Logs(buf)
}

//! The executor against a real PostgreSQL (a fresh database per test) and a
//! real HTTP stub server on loopback (allowlisted for these tests).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use meshhook_core::Command;
use meshhook_core::breaker::{self, Breaker};
use meshhook_core::definition::{HttpMethod, RetryPolicy};
use meshhook_core::event::{Event, HttpErrorKind, HttpRequest};
use meshhook_db::runs::{self, EXECUTOR_QUEUE, NewRun};
use meshhook_db::testing::TestDb;
use meshhook_db::vault::{self, Keyring};
use meshhook_db::{breakers, queue};
use meshhook_executor::{Context, Egress, JobMessage, Options};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// --- the remote side ----------------------------------------------------

/// One request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Status of `/flaky`.
    flaky: Arc<AtomicU16>,
}

impl Stub {
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn stub_handler(
    State(stub): State<Stub>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let auth = headers.get("authorization").cloned();
    stub.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    match path.as_str() {
        "/ok" => (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "query": uri.query()})),
        )
            .into_response(),
        "/text" => (StatusCode::OK, "plain text").into_response(),
        "/big" => (StatusCode::OK, "x".repeat(100)).into_response(),
        "/missing" => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "nope"}))).into_response(),
        "/boom" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "/busy" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "later",
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (StatusCode::OK, "late").into_response()
        }
        "/echo" => (
            StatusCode::OK,
            [("x-echo", auth.clone().unwrap_or_default())],
            axum::Json(json!({"auth": auth})),
        )
            .into_response(),
        "/to-internal" => {
            (StatusCode::FOUND, [("location", "http://10.0.0.1/admin")]).into_response()
        }
        "/flaky" => StatusCode::from_u16(stub.flaky.load(Ordering::SeqCst))
            .unwrap()
            .into_response(),
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

async fn start_stub() -> (Stub, SocketAddr) {
    let stub = Stub::default();
    stub.flaky.store(500, Ordering::SeqCst);
    let app = axum::Router::new()
        .fallback(stub_handler)
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, addr)
}

// --- the engine side ----------------------------------------------------

struct Harness {
    db: TestDb,
    project_id: Uuid,
    workflow_id: Uuid,
    stub: Stub,
    addr: SocketAddr,
    keyring: Arc<Keyring>,
}

fn kek() -> String {
    use base64::Engine as _;
    format!(
        "test:{}",
        base64::engine::general_purpose::STANDARD.encode([42u8; 32])
    )
}

impl Harness {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let project_id: Uuid =
            sqlx::query_scalar("INSERT INTO meshhook.projects (name) VALUES ('p') RETURNING id")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let workflow_id: Uuid = sqlx::query_scalar(
            "INSERT INTO meshhook.workflows (project_id, name) VALUES ($1, 'w') RETURNING id",
        )
        .bind(project_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let (stub, addr) = start_stub().await;
        Harness {
            db,
            project_id,
            workflow_id,
            stub,
            addr,
            keyring: Arc::new(Keyring::parse(&kek(), &[]).unwrap()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// An executor on its own: it records results and wakes the
    /// orchestrator (which these tests do not run), so each test sees
    /// exactly the attempts it started.
    fn context(&self, egress: Egress, options: Options) -> Context {
        let options = Options {
            continue_runs: false,
            ..options
        };
        Context::new(
            self.db.pool.clone(),
            self.keyring.clone(),
            Arc::new(egress),
            options,
        )
        .unwrap()
    }

    /// The default for these tests: loopback allowlisted.
    fn loopback_context(&self) -> Context {
        self.context(Egress::parse("127.0.0.1/32").unwrap(), Options::default())
    }

    /// Inserts a run whose node `call` has attempt 1 in flight, and returns
    /// the executor job for it (not yet enqueued).
    async fn run_with_request(
        &self,
        request: HttpRequest,
        retry: RetryPolicy,
    ) -> (Uuid, JobMessage) {
        let run_id = Uuid::new_v4();
        let idempotency_key = format!("{run_id}-call");
        let definition = json!({
            "nodes": [{"id": "call", "type": "http_call", "config": {"url": request.url}}],
            "edges": []
        });
        let run = NewRun {
            id: run_id,
            project_id: self.project_id,
            workflow_id: self.workflow_id,
            workflow_version_id: None,
            version: None,
            trigger_kind: "test",
            trigger: json!({"body": {}, "headers": {}, "query": {}}),
            webhook_id: None,
            idempotency_key: None,
            parent_run_id: None,
            resumed_from_node: None,
            definition: Some(definition),
        };
        let events = [
            Event::RunCreated {
                run_id,
                workflow_id: self.workflow_id,
                version: 1,
                trigger: run.trigger.clone(),
                timeout_ms: None,
                parent_run_id: None,
            },
            Event::StepStarted {
                node_id: "call".into(),
            },
            Event::HttpRequested {
                node_id: "call".into(),
                attempt: 1,
                request: request.clone(),
                idempotency_key: idempotency_key.clone(),
            },
        ];
        let mut tx = self.db.pool.begin().await.unwrap();
        runs::insert(&mut tx, &run, &events, Utc::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let job = JobMessage {
            run_id,
            project_id: self.project_id,
            job: Command::ScheduleHttp {
                node_id: "call".into(),
                attempt: 1,
                request,
                idempotency_key,
                retry,
                not_before: Utc::now(),
            },
        };
        (run_id, job)
    }

    /// A run plus its enqueued job.
    async fn start(&self, request: HttpRequest, retry: RetryPolicy) -> Uuid {
        let (run_id, job) = self.run_with_request(request, retry).await;
        self.enqueue(&job).await;
        run_id
    }

    async fn enqueue(&self, job: &JobMessage) {
        queue::send(
            &self.db.pool,
            EXECUTOR_QUEUE,
            &serde_json::to_value(job).unwrap(),
            Duration::ZERO,
        )
        .await
        .unwrap();
    }

    async fn events(&self, run_id: Uuid) -> Vec<meshhook_core::Recorded> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        runs::events(&mut conn, run_id).await.unwrap()
    }

    async fn results(&self, run_id: Uuid) -> Vec<Event> {
        self.events(run_id)
            .await
            .into_iter()
            .map(|r| r.event)
            .filter(Event::is_http_result)
            .collect()
    }

    /// Waits for the run's first HTTP result.
    async fn result(&self, run_id: Uuid) -> Event {
        for _ in 0..150 {
            if let Some(e) = self.results(run_id).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no result recorded for run {run_id}");
    }

    /// Waits until the executor queue is empty.
    async fn drained(&self) {
        for _ in 0..150 {
            if queue::depth(&self.db.pool, EXECUTOR_QUEUE).await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("executor queue never drained");
    }

    async fn breaker(&self) -> Option<Breaker> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        breakers::get(&mut conn, &self.host()).await.unwrap()
    }
}

struct Running {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

fn spawn(ctx: Context) -> Running {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(meshhook_executor::run(ctx, shutdown.clone()));
    Running { shutdown, handle }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the executor stops promptly")
            .unwrap();
    }
}

fn request(method: HttpMethod, url: String) -> HttpRequest {
    HttpRequest {
        method,
        url,
        headers: BTreeMap::new(),
        query: BTreeMap::new(),
        body: None,
        timeout_ms: 5_000,
    }
}

fn get(url: String) -> HttpRequest {
    request(HttpMethod::Get, url)
}

fn failure(e: &Event) -> (HttpErrorKind, String, Option<u16>, Option<u64>) {
    match e {
        Event::HttpAttemptFailed {
            kind,
            error,
            status,
            retry,
            ..
        } => (*kind, error.clone(), *status, retry.map(|r| r.delay_ms)),
        other => panic!("expected http_attempt_failed, got {other:?}"),
    }
}

// --- tests ----------------------------------------------------------------

#[tokio::test]
async fn success_is_recorded_once_with_status_headers_and_body() {
    let h = Harness::new().await;
    let mut req = request(HttpMethod::Post, h.url("/ok"));
    req.query.insert("q".into(), "a b".into());
    req.headers.insert("X-Custom".into(), "yes".into());
    // A literal `{{` that came from data arrives escaped, and must be sent unescaped.
    req.body = Some(json!({"text": "{{ '{{' }} not a template"}));
    let run_id = h.start(req, RetryPolicy::default()).await;
    let exec = spawn(h.loopback_context());

    match h.result(run_id).await {
        Event::HttpResponded {
            node_id,
            attempt,
            status,
            headers,
            body,
            truncated,
            ..
        } => {
            assert_eq!(
                (node_id.as_str(), attempt, status, truncated),
                ("call", 1, 200, false)
            );
            assert_eq!(body["ok"], json!(true));
            assert_eq!(body["query"], json!("q=a+b"));
            assert_eq!(
                headers.get("content-type").map(String::as_str),
                Some("application/json")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    h.drained().await;
    assert_eq!(h.results(run_id).await.len(), 1);
    let seen = h.stub.seen("/ok");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["idempotency-key"], format!("{run_id}-call"));
    assert_eq!(seen[0].headers["x-custom"], "yes");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].body).unwrap(),
        json!({"text": "{{ not a template"})
    );
    // The orchestrator was woken (once by the run's creation, once by the result).
    let wakes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.queue_messages WHERE queue = 'orchestrator' AND message->>'run_id' = $1",
    )
    .bind(run_id.to_string())
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(wakes, 2);
    // Non-retryable statuses end the step as a response; text stays text.
    let missing = h
        .start(get(h.url("/missing")), RetryPolicy::default())
        .await;
    let text = h.start(get(h.url("/text")), RetryPolicy::default()).await;
    assert!(matches!(
        h.result(missing).await,
        Event::HttpResponded { status: 404, .. }
    ));
    assert!(
        matches!(h.result(text).await, Event::HttpResponded { body: Value::String(s), .. } if s == "plain text")
    );
    exec.stop().await;
}

#[tokio::test]
async fn server_errors_fail_the_attempt_with_a_retry_decision() {
    let h = Harness::new().await;
    let run_id = h.start(get(h.url("/boom")), RetryPolicy::default()).await;
    let last = h
        .start(
            get(h.url("/boom")),
            RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
        )
        .await;
    let exec = spawn(h.loopback_context());
    let (kind, error, status, delay) = failure(&h.result(run_id).await);
    assert_eq!((kind, status), (HttpErrorKind::Status, Some(500)));
    assert_eq!(error, "HTTP 500 Internal Server Error");
    assert!(delay.is_some_and(|d| d <= 1_000), "{delay:?}");
    // Attempts exhausted: no retry.
    let (kind, _, _, delay) = failure(&h.result(last).await);
    assert_eq!((kind, delay), (HttpErrorKind::Status, None));
    exec.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let h = Harness::new().await;
    let retry = RetryPolicy {
        base_ms: 10,
        ..RetryPolicy::default()
    };
    let run_id = h.start(get(h.url("/busy")), retry).await;
    let exec = spawn(h.loopback_context());
    let e = h.result(run_id).await;
    let (kind, _, status, delay) = failure(&e);
    assert_eq!((kind, status), (HttpErrorKind::Status, Some(503)));
    assert!(delay.is_some_and(|d| d >= 1_000), "{delay:?}");
    exec.stop().await;
}

#[tokio::test]
async fn timeouts_fail_with_kind_timeout() {
    let h = Harness::new().await;
    let mut req = get(h.url("/slow"));
    req.timeout_ms = 300;
    let run_id = h.start(req, RetryPolicy::default()).await;
    let exec = spawn(h.loopback_context());
    let (kind, error, _, delay) = failure(&h.result(run_id).await);
    assert_eq!(kind, HttpErrorKind::Timeout);
    assert_eq!(error, "no response within 300 ms");
    assert!(delay.is_some());
    exec.stop().await;
}

#[tokio::test]
async fn internal_addresses_are_refused_without_a_request() {
    let h = Harness::new().await;
    let metadata = h
        .start(
            get("http://169.254.169.254/latest/meta-data/".into()),
            RetryPolicy::default(),
        )
        .await;
    let private = h
        .start(get("http://10.0.0.1/admin".into()), RetryPolicy::default())
        .await;
    let redirected = h
        .start(get(h.url("/to-internal")), RetryPolicy::default())
        .await;
    let exec = spawn(h.loopback_context());

    let (kind, error, _, retry) = failure(&h.result(metadata).await);
    assert_eq!((kind, retry), (HttpErrorKind::Ssrf, None));
    assert!(
        error.contains("169.254.169.254 is a link-local address"),
        "{error}"
    );
    let (kind, error, _, retry) = failure(&h.result(private).await);
    assert_eq!((kind, retry), (HttpErrorKind::Ssrf, None));
    assert_eq!(
        error,
        "refused: 10.0.0.1 is a private address (set MESHHOOK_EGRESS_ALLOWLIST to allow it)"
    );
    // A redirect hop to an internal address is refused too.
    let (kind, error, _, retry) = failure(&h.result(redirected).await);
    assert_eq!((kind, retry), (HttpErrorKind::Ssrf, None), "{error}");
    assert!(error.contains("10.0.0.1 is a private address"), "{error}");
    assert_eq!(
        h.stub.total(),
        1,
        "only the redirecting request reached the stub"
    );
    exec.stop().await;

    // Names are checked after DNS resolution: `localhost` without an allowlist.
    let exec = spawn(h.context(Egress::default(), Options::default()));
    let by_name = h
        .start(
            get(format!("http://localhost:{}/ok", h.addr.port())),
            RetryPolicy::default(),
        )
        .await;
    let (kind, error, _, retry) = failure(&h.result(by_name).await);
    assert_eq!((kind, retry), (HttpErrorKind::Ssrf, None), "{error}");
    assert!(error.contains("is a loopback address"), "{error}");
    assert_eq!(h.stub.seen("/ok").len(), 0);
    exec.stop().await;
}

#[tokio::test]
async fn the_circuit_opens_after_five_failures_and_a_probe_closes_it() {
    let h = Harness::new().await;
    let options = Options {
        breaker: breaker::Policy {
            failure_threshold: 5,
            open_ms: 1_500,
            half_open_probes: 1,
        },
        ..Options::default()
    };
    let exec = spawn(h.context(Egress::parse("127.0.0.1/32").unwrap(), options));
    let mut failing = Vec::new();
    for _ in 0..5 {
        failing.push(h.start(get(h.url("/flaky")), RetryPolicy::default()).await);
    }
    for run_id in &failing {
        assert_eq!(failure(&h.result(*run_id).await).0, HttpErrorKind::Status);
    }
    h.drained().await;
    assert_eq!(h.stub.seen("/flaky").len(), 5);
    assert!(matches!(
        h.breaker().await.unwrap().state,
        breaker::State::Open { .. }
    ));

    // Open: fails fast, nothing sent, retried after the open period.
    let rejected = h.start(get(h.url("/flaky")), RetryPolicy::default()).await;
    let (kind, error, _, delay) = failure(&h.result(rejected).await);
    assert_eq!(kind, HttpErrorKind::CircuitOpen);
    assert!(error.contains("is open until"), "{error}");
    assert!(delay.is_some_and(|d| d > 0 && d <= 1_500), "{delay:?}");
    assert_eq!(h.stub.seen("/flaky").len(), 5);

    // After the open period, one probe goes out; its success closes the circuit.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    h.stub.flaky.store(200, Ordering::SeqCst);
    let probe = h.start(get(h.url("/flaky")), RetryPolicy::default()).await;
    assert!(matches!(
        h.result(probe).await,
        Event::HttpResponded { status: 200, .. }
    ));
    h.drained().await;
    assert_eq!(h.stub.seen("/flaky").len(), 6);
    assert_eq!(
        h.breaker().await.unwrap().state,
        breaker::State::Closed {
            consecutive_failures: 0
        }
    );
    exec.stop().await;
}

#[tokio::test]
async fn a_duplicate_job_records_nothing_more() {
    let h = Harness::new().await;
    let (run_id, job) = h
        .run_with_request(get(h.url("/ok")), RetryPolicy::default())
        .await;
    // Two deliveries of the same job at once: both may send (with the same
    // key), only one result is recorded.
    h.enqueue(&job).await;
    h.enqueue(&job).await;
    let exec = spawn(h.loopback_context());
    h.result(run_id).await;
    h.drained().await;
    let sent = h.stub.seen("/ok");
    assert!((1..=2).contains(&sent.len()));
    assert!(
        sent.iter()
            .all(|s| s.headers["idempotency-key"] == format!("{run_id}-call"))
    );
    // A late redelivery after the result is recorded: no request, no event.
    let log_before = h.events(run_id).await;
    h.enqueue(&job).await;
    h.drained().await;
    assert_eq!(h.events(run_id).await, log_before);
    assert_eq!(h.results(run_id).await.len(), 1);
    assert_eq!(h.stub.seen("/ok").len(), sent.len());
    exec.stop().await;
}

#[tokio::test]
async fn secrets_are_resolved_at_send_time_and_never_recorded() {
    let h = Harness::new().await;
    let value = "sk_live_0123456789abcdef";
    let mut conn = h.db.pool.acquire().await.unwrap();
    vault::put_secret(
        &mut conn,
        h.project_id,
        "API_TOKEN",
        value,
        &h.keyring,
        None,
    )
    .await
    .unwrap();
    let hint: String =
        sqlx::query_scalar("SELECT hint FROM meshhook.secrets WHERE name = 'API_TOKEN'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(hint, "sk_…cdef");
    drop(conn);

    let mut req = get(h.url("/echo"));
    req.headers.insert(
        "Authorization".into(),
        "Bearer {{ secrets.API_TOKEN }}".into(),
    );
    let run_id = h.start(req, RetryPolicy::default()).await;
    let mut missing = get(h.url("/echo"));
    missing
        .headers
        .insert("X-Key".into(), "{{ secrets.NOPE }}".into());
    let missing = h.start(missing, RetryPolicy::default()).await;
    let exec = spawn(h.loopback_context());

    let e = h.result(run_id).await;
    let seen = h.stub.seen("/echo");
    assert_eq!(seen.len(), 1, "the missing secret sends nothing");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {value}"));
    // What the server echoed is scrubbed from the recorded response.
    match &e {
        Event::HttpResponded { body, headers, .. } => {
            assert_eq!(body["auth"], json!("Bearer [redacted]"));
            assert_eq!(headers["x-echo"], "Bearer [redacted]");
        }
        other => panic!("unexpected {other:?}"),
    }
    let (kind, error, _, retry) = failure(&h.result(missing).await);
    assert_eq!((kind, retry), (HttpErrorKind::Secret, None));
    assert_eq!(error, "secret `NOPE` is not defined");

    let everything: Vec<String> = sqlx::query_scalar("SELECT data::text FROM meshhook.events")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert!(everything.iter().all(|d| !d.contains(value)));
    assert!(
        everything
            .iter()
            .any(|d| d.contains("{{ secrets.API_TOKEN }}"))
    );
    let audit: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT action, actor_kind, details FROM meshhook.audit_log WHERE project_id = $1 AND target_type = 'secret'",
    )
    .bind(h.project_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "secret.decrypt");
    assert_eq!(audit[0].1, "worker");
    assert_eq!(audit[0].2, json!({"run_id": run_id, "name": "API_TOKEN"}));
    exec.stop().await;
}

#[tokio::test]
async fn vault_rows_do_not_open_elsewhere_and_rotation_rewraps() {
    let h = Harness::new().await;
    let mut conn = h.db.pool.acquire().await.unwrap();
    vault::put_secret(&mut conn, h.project_id, "A", "value-a", &h.keyring, None)
        .await
        .unwrap();
    // A row copied under another name does not decrypt.
    sqlx::query(
        "INSERT INTO meshhook.secrets (project_id, name, ciphertext, nonce, wrapped_dek, dek_nonce, kek_id, hint)
         SELECT project_id, 'B', ciphertext, nonce, wrapped_dek, dek_nonce, kek_id, hint FROM meshhook.secrets WHERE name = 'A'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let err = vault::resolve(&mut conn, h.project_id, ["B"], &h.keyring, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, vault::Error::Undecryptable(ref n) if n == "B"),
        "{err}"
    );
    let err = vault::resolve(&mut conn, h.project_id, ["A", "C"], &h.keyring, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, vault::Error::Missing(ref n) if n == "C"),
        "{err}"
    );

    // Rotation: new current key, old one kept as previous; rewrap moves rows.
    use base64::Engine as _;
    let new = format!(
        "next:{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let old = kek();
    let rotated = Keyring::parse(&new, &[old.as_str()]).unwrap();
    let got = vault::resolve(&mut conn, h.project_id, ["A"], &rotated, None)
        .await
        .unwrap();
    assert_eq!(got.get("A").unwrap().expose(), "value-a");
    let report = vault::rewrap(&mut conn, &rotated).await.unwrap();
    let copied: Uuid = sqlx::query_scalar("SELECT id FROM meshhook.secrets WHERE name = 'B'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((report.moved, report.unreadable), (1, vec![copied]));
    let only_new = Keyring::parse(&new, &[]).unwrap();
    let got = vault::resolve(&mut conn, h.project_id, ["A"], &only_new, None)
        .await
        .unwrap();
    assert_eq!(got.get("A").unwrap().expose(), "value-a");
}

#[tokio::test]
async fn early_jobs_wait_and_large_bodies_are_truncated() {
    let h = Harness::new().await;
    let (run_id, mut job) = h
        .run_with_request(get(h.url("/big")), RetryPolicy::default())
        .await;
    let not_before: DateTime<Utc> = Utc::now() + chrono::Duration::milliseconds(1_500);
    if let Command::ScheduleHttp { not_before: nb, .. } = &mut job.job {
        *nb = not_before;
    }
    h.enqueue(&job).await;
    let exec = spawn(h.context(
        Egress::parse("127.0.0.1").unwrap(),
        Options {
            max_response_bytes: 10,
            ..Options::default()
        },
    ));
    let e = h.result(run_id).await;
    let recorded_at = h.events(run_id).await.last().unwrap().at;
    assert!(recorded_at >= not_before, "{recorded_at} < {not_before}");
    match e {
        Event::HttpResponded {
            body, truncated, ..
        } => {
            assert!(truncated);
            assert_eq!(body, json!("xxxxxxxxxx"));
        }
        other => panic!("unexpected {other:?}"),
    }
    exec.stop().await;
}

#[tokio::test]
async fn a_recorded_result_continues_the_run_in_the_same_transaction() {
    let h = Harness::new().await;
    let run_id = h.start(get(h.url("/ok")), RetryPolicy::default()).await;
    let ctx = Context::new(
        h.db.pool.clone(),
        h.keyring.clone(),
        Arc::new(Egress::parse("127.0.0.1/32").unwrap()),
        Options::default(),
    )
    .unwrap();
    assert!(ctx.options.continue_runs, "the default");
    let exec = spawn(ctx);
    h.result(run_id).await;
    h.drained().await;
    exec.stop().await;
    // No orchestrator runs here, yet the run ended: the executor took the
    // pass after the result (the http_call is the last node) itself.
    let (status, output): (String, Value) =
        sqlx::query_as("SELECT status, output FROM meshhook.runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "succeeded");
    assert_eq!(output["status"], json!(200));
    let types: Vec<String> = h
        .events(run_id)
        .await
        .iter()
        .map(|e| e.event.type_name().to_owned())
        .collect();
    assert_eq!(
        &types[types.len() - 3..],
        ["http_responded", "step_succeeded", "run_succeeded"]
    );
    // Only the run's creation woke the orchestrator.
    let wakes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.queue_messages WHERE queue = 'orchestrator' AND message->>'run_id' = $1",
    )
    .bind(run_id.to_string())
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(wakes, 1);
}

#[tokio::test]
async fn a_job_that_never_records_fails_its_attempt_on_the_last_delivery() {
    let h = Harness::new().await;
    let (run_id, job) = h
        .run_with_request(get(h.url("/ok")), RetryPolicy::default())
        .await;
    h.enqueue(&job).await;
    // As if 19 deliveries had each died before recording anything.
    sqlx::query(
        "UPDATE meshhook.queue_messages m SET read_ct = q.max_reads - 1
         FROM meshhook.queues q WHERE q.name = m.queue AND m.queue = 'executor'",
    )
    .execute(&h.db.pool)
    .await
    .unwrap();
    let exec = spawn(h.loopback_context());
    let (kind, error, status, retry) = failure(&h.result(run_id).await);
    h.drained().await;
    exec.stop().await;
    assert_eq!(kind, HttpErrorKind::Other);
    assert!(error.contains("abandoned after 19 deliveries"), "{error}");
    assert_eq!((status, retry), (None, None), "not retried");
    assert!(h.stub.seen("/ok").is_empty(), "not sent again");
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.queue_dead_letters")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "acked, not dead-lettered");
}

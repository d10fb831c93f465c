//! MeshHook's HTTP API: the `/api/v1` contract (../shared/API.md and
//! docs/api.md), `/healthz` and `/readyz`, the OpenAPI document and its
//! docs page, and the SPA's static files at `/` (history-mode routes fall
//! back to `index.html`).
//!
//! [`app`] builds the router from a [`Context`] so tests can drive it
//! in-process; [`run`] serves it until the shutdown token fires. The API
//! holds no state of its own beyond caches and rate-limit counters: every
//! fact is in PostgreSQL.
//!
//! Map: [`auth`] (tokens, passwords, API keys, the `Caller` extractor),
//! [`access`] (roles and the per-request RLS session), [`extract`] (JSON,
//! path and query extractors that answer in the error shape), [`error`],
//! [`v1`] (one module per resource, each with its `router()`), [`docs`]
//! (OpenAPI). Handlers stay thin: SQL lives in `meshhook_db`, engine
//! operations in `meshhook_orchestrator::engine`.

pub mod access;
pub mod auth;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod hooks;
pub mod spa;
pub mod v1;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use meshhook_db::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use error::Error;

/// Default limit of request bodies (`Settings::body_limit`).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Settings the API needs, validated by the binary at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of webhook URLs handed to users (`MESHHOOK_PUBLIC_URL`).
    pub public_url: String,
    /// Where the SPA comes from.
    pub spa: spa::Source,
    /// HS256 secret of access tokens (`MESHHOOK_JWT_SECRET`); without it
    /// sign-in answers 503.
    pub jwt_secret: Option<auth::JwtSecret>,
    /// Key-encryption keys of the secrets vault (`MESHHOOK_KEK`,
    /// `MESHHOOK_KEK_PREVIOUS`); without them the secrets routes answer 503.
    pub keyring: Option<Arc<meshhook_db::vault::Keyring>>,
    /// Failed sign-in attempts allowed per email and per client address.
    pub login_limits: auth::LoginLimits,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy
    /// that sets it; `MESHHOOK_TRUST_PROXY`).
    pub trust_forwarded_for: bool,
    /// Largest accepted request body, in bytes (413 above).
    pub body_limit: usize,
    /// Process-wide in-memory state; leave it `Default`.
    pub runtime: auth::Runtime,
    /// The live feed's listener, started by the first live socket; leave
    /// it `Default`.
    pub live: v1::live::Hub,
    /// The webhook ingress's in-memory state; leave it `Default`.
    pub hooks: Arc<hooks::Runtime>,
    /// The clock webhook signatures are checked against (tests pin it).
    pub clock: hooks::Clock,
    /// Compiled PII redaction rules per project; leave it `Default`.
    pub redaction: Arc<v1::redaction::Cache>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            spa: spa::Source::default(),
            jwt_secret: None,
            keyring: None,
            login_limits: auth::LoginLimits::default(),
            trust_forwarded_for: false,
            body_limit: DEFAULT_BODY_LIMIT,
            runtime: auth::Runtime::default(),
            live: v1::live::Hub::default(),
            hooks: Arc::default(),
            clock: hooks::Clock::System,
            redaction: Arc::default(),
        }
    }
}

/// Everything a handler may use.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}

/// Every documented route, with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<Context> {
    OpenApiRouter::with_openapi(docs::base())
        .merge(health::router())
        .merge(docs::router())
        .merge(v1::router())
        .routes(utoipa_axum::routes!(hooks::ingress))
}

/// The whole router.
pub fn app(ctx: Context) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let (api, _) = api_router().split_for_parts();
    let body_limit = ctx.settings.body_limit;
    // The ingress also takes PUT and PATCH (documented once, as POST).
    let api = api.route(
        "/hooks/{token}",
        axum::routing::put(hooks::ingress).patch(hooks::ingress),
    );
    api.fallback(spa::service(&ctx.settings.spa))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(axum::middleware::from_fn(count_request))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                })
                // 5xx are logged once, by the error itself (error.rs).
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Counts each answered request and its latency (atomics only).
async fn count_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let m = &meshhook_metrics::METRICS;
    m.api_requests
        .inc(meshhook_metrics::status_class(res.status().as_u16()));
    m.api_request_duration.observe(started.elapsed());
    res
}

async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/hooks/") {
        let mut res = Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "webhooks accept POST, PUT and PATCH",
        )
        .into_response();
        res.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("POST, PUT, PATCH"),
        );
        return res;
    }
    Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not accept that method",
    )
    .into_response()
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    // The payload may quote data; it is not logged.
    Error::internal("a handler panicked").into_response()
}

/// Serves [`app`] on `addr` until `shutdown` fires, then drains in-flight
/// requests.
pub async fn run(
    ctx: Context,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve(ctx, listener, shutdown).await
}

/// Like [`run`], on a listener the caller bound (port 0 in tests).
pub async fn serve(
    ctx: Context,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "api listening");
    let _ = ctx.settings.hooks.local_addr.set(addr);
    let live = ctx.settings.live.clone();
    axum::serve(
        listener,
        app(ctx).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.cancelled().await;
        // Open websockets would hold the graceful shutdown forever.
        live.close_all();
    })
    .await
}

//! Webhook triggers of a workflow, their secrets and delivery log.

use serde::Serialize;
use serde_json::{Value, json};

use super::json::{Fields, FromJson};
use super::{Error, delete, get, patch, post};

/// A webhook (never its signing secret).
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Webhook id.
    pub id: String,
    /// The workflow it starts.
    pub workflow_id: String,
    /// The full ingress URL (`.../hooks/{token}`).
    pub url: String,
    /// `{"scheme": ...}` plus scheme options.
    pub verification: Value,
    /// `"async"` or `{"sync": {"timeout_ms": n}}`.
    pub mode: Value,
    /// Token bucket, if limited.
    pub rate_limit: Option<RateLimit>,
    /// Whether deliveries are accepted.
    pub enabled: bool,
    /// When it was created.
    pub created_at: String,
}

impl Webhook {
    /// The verification scheme's name (`standard_webhooks`, ...).
    pub fn scheme(&self) -> String {
        self.verification["scheme"]
            .as_str()
            .unwrap_or("none")
            .to_owned()
    }

    /// `async` or `sync (10 s)`.
    pub fn mode_label(&self) -> String {
        match self.mode["sync"]["timeout_ms"].as_u64() {
            Some(ms) => format!("sync ({} s)", ms as f64 / 1000.0),
            None if self.mode.get("sync").is_some() => "sync".to_owned(),
            None => "async".to_owned(),
        }
    }
}

/// `{per_second, burst}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RateLimit {
    /// Refill rate.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

/// The answer to creating a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// The webhook.
    pub webhook: Webhook,
    /// The generated signing secret, shown this once.
    pub signing_secret: Option<String>,
}

/// The answer to a secret rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The new secret, shown this once.
    pub signing_secret: String,
    /// Until when the previous secret is still accepted.
    pub previous_valid_until: String,
}

/// What the webhook's own endpoint answered to a test delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct TestOutcome {
    /// HTTP status of `/hooks/{token}`.
    pub status: u16,
    /// Its body (JSON when it was JSON).
    pub body: Value,
}

/// One row of the delivery log.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Delivery id.
    pub id: String,
    /// When it was received.
    pub time: String,
    /// `accepted`, `duplicate`, `bad_signature`, ...
    pub verdict: String,
    /// HTTP status answered.
    pub status: i32,
    /// The run it started, if any.
    pub run_id: Option<String>,
    /// Time to answer.
    pub latency_ms: Option<f64>,
    /// Why it was refused, when it was.
    pub detail: Option<String>,
}

/// A page of the delivery log.
#[derive(Clone, Debug, PartialEq)]
pub struct Deliveries {
    /// Newest first.
    pub items: Vec<Delivery>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/workflows/{id}/webhooks`.
pub async fn list(workflow: &str) -> Result<Vec<Webhook>, Error> {
    get(&format!("/api/v1/workflows/{workflow}/webhooks")).await
}

/// `POST /api/v1/workflows/{id}/webhooks` with a `WebhookIn` body.
pub async fn create(workflow: &str, body: &Value) -> Result<Created, Error> {
    post(&format!("/api/v1/workflows/{workflow}/webhooks"), body).await
}

/// `PATCH /api/v1/webhooks/{id}`.
pub async fn update(id: &str, body: &Value) -> Result<Webhook, Error> {
    patch(&format!("/api/v1/webhooks/{id}"), body).await
}

/// `DELETE /api/v1/webhooks/{id}`.
pub async fn remove(id: &str) -> Result<(), Error> {
    delete(&format!("/api/v1/webhooks/{id}")).await
}

/// `POST /api/v1/webhooks/{id}/rotate-secret` (default grace period).
pub async fn rotate_secret(id: &str) -> Result<Rotated, Error> {
    post(&format!("/api/v1/webhooks/{id}/rotate-secret"), &json!({})).await
}

/// `POST /api/v1/webhooks/{id}/test`.
pub async fn test(id: &str, payload: &Value) -> Result<TestOutcome, Error> {
    post(
        &format!("/api/v1/webhooks/{id}/test"),
        &json!({ "payload": payload }),
    )
    .await
}

/// `GET /api/v1/webhooks/{id}/deliveries` (newest 50).
pub async fn deliveries(id: &str) -> Result<Deliveries, Error> {
    get(&format!("/api/v1/webhooks/{id}/deliveries?limit=50")).await
}

impl FromJson for Webhook {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Webhook {
            id: f.string("id")?,
            workflow_id: f.string("workflow_id")?,
            url: f.string("url")?,
            verification: f.value("verification"),
            mode: f.value("mode"),
            rate_limit: f.opt_decode("rate_limit")?,
            enabled: f.boolean("enabled")?,
            created_at: f.string("created_at")?,
        })
    }
}

impl FromJson for RateLimit {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(RateLimit {
            per_second: f.float("per_second")?,
            burst: f.int_in("burst")?,
        })
    }
}

impl FromJson for Created {
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(Created {
            webhook: Webhook::from_json(value)?,
            signing_secret: Fields::of(value)?.opt_string("signing_secret"),
        })
    }
}

impl FromJson for Rotated {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Rotated {
            signing_secret: f.string("signing_secret")?,
            previous_valid_until: f.string("previous_valid_until")?,
        })
    }
}

impl FromJson for TestOutcome {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(TestOutcome {
            status: f.int_in("status")?,
            body: f.value("body"),
        })
    }
}

impl FromJson for Delivery {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Delivery {
            id: f.string("id")?,
            time: f.string("time")?,
            verdict: f.string("verdict")?,
            status: f.int_in("status")?,
            run_id: f.opt_string("run_id"),
            latency_ms: f.opt_float("latency_ms"),
            detail: f.opt_string("detail"),
        })
    }
}

impl FromJson for Deliveries {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Deliveries {
            items: f.decode("items")?,
            next_cursor: f.opt_string("next_cursor"),
        })
    }
}

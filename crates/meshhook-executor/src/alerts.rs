//! The alerts loop: evaluates the projects' alert rules and delivers the
//! alerts that fire (`meshhook_db::alerts`, migration 0015).
//!
//! Every [`EVERY`] the executor evaluates all rules, then claims due
//! deliveries and POSTs each one's JSON payload to its rule's URL, signed
//! with the Standard Webhooks scheme under the rule's secret:
//! `webhook-id` (the delivery id, stable across retries so receivers can
//! dedupe), `webhook-timestamp` (seconds) and `webhook-signature`
//! (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`). Any Standard
//! Webhooks library verifies it. A 2xx answer delivers it; anything else
//! is retried with backoff (10 s, 30 s, 90 s, 270 s, 810 s) and given up
//! after [`meshhook_db::alerts::MAX_ATTEMPTS`] attempts. The rule's URL
//! goes through the same SSRF guard as workflow HTTP calls.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use meshhook_db::alerts::{self, Due, MAX_ATTEMPTS};
use meshhook_db::vault;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::Context;

/// How often rules are evaluated and due deliveries sent.
pub const EVERY: Duration = Duration::from_secs(5);
/// Per-attempt HTTP timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs until `shutdown`.
pub async fn run(ctx: Context, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = alerts::evaluate(&ctx.pool).await {
            tracing::warn!(error = %e, "evaluating alert rules failed; retrying later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = deliver_due(&ctx) => {}
        }
    }
}

/// Sends every due delivery once (a few at a time).
pub async fn deliver_due(ctx: &Context) {
    loop {
        let due = match alerts::claim_due(&ctx.pool, 16, 60.0).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "claiming alert deliveries failed; retrying later");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        for d in &due {
            attempt(ctx, d).await;
        }
    }
}

/// One attempt of one delivery, recorded.
async fn attempt(ctx: &Context, d: &Due) {
    let (delivered, code, error) = match send(ctx, d).await {
        Ok(code) if (200..300).contains(&code) => (true, Some(code), None),
        Ok(code) => (
            false,
            Some(code),
            Some(format!("the receiver answered {code}")),
        ),
        Err(e) => (false, None, Some(e)),
    };
    let retry = (!delivered && d.attempts < MAX_ATTEMPTS).then(|| backoff_secs(d.attempts));
    if !delivered {
        tracing::info!(delivery_id = %d.id, rule_id = %d.rule_id, attempts = d.attempts,
            error = error.as_deref().unwrap_or(""), "alert delivery failed");
    }
    let code = code.map(i32::from);
    if let Err(e) = alerts::record(&ctx.pool, d.id, delivered, code, error.as_deref(), retry).await
    {
        tracing::warn!(error = %e, delivery_id = %d.id, "recording an alert delivery failed");
    }
}

/// Seconds before attempt `n + 1`: 10, 30, 90, 270, 810.
pub fn backoff_secs(attempts: i32) -> f64 {
    10.0 * 3f64.powi(attempts.clamp(1, 5) - 1)
}

/// The Standard Webhooks signature header value for `body`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The HMAC key of a `whsec_<base64>` secret.
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix("whsec_")?).ok()
}

async fn send(ctx: &Context, d: &Due) -> Result<u16, String> {
    let url = url::Url::parse(&d.url).map_err(|e| format!("invalid URL: {e}"))?;
    // Literal addresses skip the resolver's guard: check them here.
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal {
        ctx.egress
            .check_ip(ip)
            .map_err(|r| format!("the egress guard {r}"))?;
    }
    let secret = vault::open(
        &ctx.keyring,
        d.project_id,
        &alerts::secret_name(d.rule_id),
        &d.sealed(),
    )
    .map_err(|e| format!("the rule's signing secret cannot be opened: {e}"))?;
    let secret = std::str::from_utf8(&secret).map_err(|_| "the signing secret is not text")?;
    let key = key_of(secret).ok_or("the signing secret is not a whsec_ secret")?;
    let body = serde_json::to_vec(&d.payload).map_err(|e| e.to_string())?;
    let id = d.id.to_string();
    let ts = chrono::Utc::now().timestamp();
    let res = ctx
        .client
        .post(url)
        .timeout(TIMEOUT)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature(&key, &id, ts, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sending failed: {}", without_url(&e)))?;
    Ok(res.status().as_u16())
}

/// reqwest's error text without the URL (it may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_spec_example() {
        // The example from the Standard Webhooks specification.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b: Vec<f64> = (1..=7).map(backoff_secs).collect();
        assert_eq!(b, [10.0, 30.0, 90.0, 270.0, 810.0, 810.0, 810.0]);
    }
}

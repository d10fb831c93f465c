//! Per-webhook token buckets, in this process's memory.
//!
//! With N API instances behind a load balancer every instance keeps its
//! own buckets, so the effective limit is up to N times the configured one
//! (docs/webhooks.md says how to size it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use uuid::Uuid;

use super::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every webhook this process has seen.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

fn refill(b: &mut Bucket, rl: RateLimit, now: Instant) {
    let capacity = f64::from(rl.burst.max(1));
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rl.per_second).min(capacity);
    b.at = now;
}

impl Limiter {
    /// Takes one token, or says how long until one is available.
    pub fn take(&self, id: Uuid, rl: RateLimit) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(id).or_insert(Bucket {
            tokens: f64::from(rl.burst.max(1)),
            at: now,
        });
        refill(b, rl, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - b.tokens) / rl.per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }

    /// Drops a webhook's bucket (its limit changed).
    pub fn forget(&self, id: Uuid) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// `X-RateLimit-Limit` (the burst), `-Remaining` (whole tokens) and
    /// `-Reset` (seconds until the bucket is full again).
    pub fn headers(&self, id: Uuid, rl: RateLimit, headers: &mut HeaderMap) {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(id).or_insert(Bucket {
            tokens: f64::from(rl.burst.max(1)),
            at: now,
        });
        refill(b, rl, now);
        let capacity = f64::from(rl.burst.max(1));
        let reset = ((capacity - b.tokens) / rl.per_second.max(f64::MIN_POSITIVE)).ceil() as u64;
        headers.insert("x-ratelimit-limit", HeaderValue::from(rl.burst));
        headers.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(b.tokens.floor().max(0.0) as u64),
        );
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_refill() {
        let l = Limiter::default();
        let id = Uuid::nil();
        let rl = RateLimit {
            per_second: 1000.0,
            burst: 3,
        };
        for _ in 0..3 {
            assert!(l.take(id, rl).is_ok());
        }
        assert!(l.take(id, rl).is_err());
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.take(id, rl).is_ok());
    }
}

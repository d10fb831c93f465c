//! Retry timing: exponential backoff with full jitter, capped, honouring
//! `Retry-After`. Pure: the caller supplies the random number and the clock,
//! and records the chosen delay in the run's event log.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::definition::RetryPolicy;
use crate::event::RetryDecision;

/// The longest `Retry-After` honoured when the policy's `max_ms` is smaller.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// The delay before the attempt after `attempt` (1-based: `attempt` is the
/// number of the attempt that just failed).
///
/// Full jitter: `random_unit * min(max_ms, base_ms * 2^(attempt-1))`, with
/// `random_unit` in `[0, 1)` (values outside are clamped). A `Retry-After`
/// from the server raises the delay to at least that long, even past
/// `max_ms` (the server said when it can take the request), up to
/// [`RETRY_AFTER_CAP`] or `max_ms`, whichever is larger: a server asking for
/// more is retried at that cap rather than parking the run.
pub fn delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    random_unit: f64,
) -> Duration {
    let cap = Duration::from_millis(policy.max_ms);
    let exponent = attempt.saturating_sub(1).min(63);
    let ceiling_ms = policy
        .base_ms
        .saturating_mul(1u64 << exponent)
        .min(policy.max_ms);
    let unit = if random_unit.is_finite() {
        random_unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let jittered = Duration::from_millis((ceiling_ms as f64 * unit) as u64);
    match retry_after {
        Some(ra) => ra.max(jittered).min(cap.max(RETRY_AFTER_CAP)),
        None => jittered.min(cap),
    }
}

/// Whether a response status is retried under `policy`: the listed statuses
/// when `retry_on_status` is set, otherwise 408, 429 and every 5xx.
pub fn is_retryable_status(policy: &RetryPolicy, status: u16) -> bool {
    match &policy.retry_on_status {
        Some(list) => list.contains(&status),
        None => matches!(status, 408 | 429 | 500..=599),
    }
}

/// Whether another attempt is allowed after `attempt` failed.
pub fn has_attempts_left(policy: &RetryPolicy, attempt: u32) -> bool {
    attempt < policy.max_attempts
}

/// The retry to record for a failed `attempt`, or `None` when attempts are
/// exhausted. The executor calls this with a fresh random number and its
/// clock, and stores the result in [`crate::event::Event::HttpAttemptFailed`].
pub fn plan_retry(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    random_unit: f64,
    now: DateTime<Utc>,
) -> Option<RetryDecision> {
    if !has_attempts_left(policy, attempt) {
        return None;
    }
    let d = delay(policy, attempt, retry_after, random_unit);
    let delay_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let at = now + chrono::Duration::milliseconds(i64::try_from(delay_ms).unwrap_or(i64::MAX / 2));
    Some(RetryDecision { delay_ms, at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn grows_exponentially_under_full_jitter() {
        let p = policy();
        assert_eq!(delay(&p, 1, None, 0.999_999), Duration::from_millis(999));
        assert_eq!(delay(&p, 2, None, 0.5), Duration::from_millis(1000));
        assert_eq!(delay(&p, 3, None, 0.5), Duration::from_millis(2000));
        assert_eq!(delay(&p, 1, None, 0.0), Duration::ZERO);
    }

    #[test]
    fn is_capped() {
        let p = policy();
        assert_eq!(delay(&p, 30, None, 1.0), Duration::from_millis(300_000));
        assert_eq!(
            delay(&p, u32::MAX, None, 1.0),
            Duration::from_millis(300_000)
        );
        assert_eq!(
            delay(&p, 2, None, 7.0),
            Duration::from_millis(2000),
            "unit clamped"
        );
        assert_eq!(delay(&p, 2, None, f64::NAN), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_past_a_small_max_ms() {
        let p = RetryPolicy {
            max_ms: 200,
            ..policy()
        };
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(1)), 0.5),
            Duration::from_secs(1)
        );
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(3600)), 0.5),
            RETRY_AFTER_CAP
        );
    }

    #[test]
    fn honours_retry_after_up_to_the_cap() {
        let p = policy();
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(10)), 0.5),
            Duration::from_secs(10)
        );
        assert_eq!(
            delay(&p, 1, Some(Duration::from_millis(1)), 0.5),
            Duration::from_millis(500)
        );
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(3600)), 0.5),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn retryable_statuses() {
        let p = policy();
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(is_retryable_status(&p, s), "{s}");
        }
        for s in [200, 301, 400, 401, 404, 409, 422] {
            assert!(!is_retryable_status(&p, s), "{s}");
        }
        let custom = RetryPolicy {
            retry_on_status: Some(vec![409]),
            ..policy()
        };
        assert!(is_retryable_status(&custom, 409));
        assert!(!is_retryable_status(&custom, 503));
    }

    #[test]
    fn plans_until_attempts_run_out() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let p = policy();
        let r = plan_retry(&p, 1, None, 0.5, now).unwrap();
        assert_eq!(r.delay_ms, 500);
        assert_eq!(r.at, now + chrono::Duration::milliseconds(500));
        assert!(plan_retry(&p, 4, None, 0.5, now).is_some());
        assert!(plan_retry(&p, 5, None, 0.5, now).is_none());
    }
}

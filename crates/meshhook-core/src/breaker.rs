//! A per-target circuit breaker: closed, open, half-open. Pure and
//! serializable, so the executor can keep one per host in Postgres as JSON
//! and update it in the same transaction as the attempt it guards.
//!
//! - **Closed**: requests flow; `failure_threshold` consecutive failures open it.
//! - **Open**: requests are rejected until `open_ms` have passed.
//! - **Half-open**: up to `half_open_probes` probe requests go through; a
//!   success closes the breaker, a failure reopens it. A probe that never
//!   reports back (its worker died) frees its slot after another `open_ms`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Breaker tuning. Defaults: 5 failures, 60 s open, 1 half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before probing.
    pub open_ms: u64,
    /// Concurrent probes allowed while half-open.
    pub half_open_probes: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            failure_threshold: 5,
            open_ms: 60_000,
            half_open_probes: 1,
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Requests flow.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
    },
    /// Requests are rejected until `until`.
    Open {
        /// When probing may start.
        until: DateTime<Utc>,
    },
    /// Probing.
    HalfOpen {
        /// Probes admitted and not yet reported.
        probes_in_flight: u32,
        /// When the last probe was admitted.
        since: DateTime<Utc>,
    },
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "admission", rename_all = "snake_case")]
pub enum Admission {
    /// Send it.
    Allow,
    /// Send it as a probe; report the outcome with `on_success`/`on_failure`.
    Probe,
    /// Do not send it; try again at `until`.
    Reject {
        /// Earliest time worth trying again.
        until: DateTime<Utc>,
    },
}

/// A circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Tuning.
    #[serde(default)]
    pub policy: Policy,
    /// Current state.
    #[serde(flatten)]
    pub state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new(Policy::default())
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: Policy) -> Self {
        Breaker {
            policy,
            state: State::Closed {
                consecutive_failures: 0,
            },
        }
    }

    fn open_for(&self) -> Duration {
        Duration::milliseconds(i64::try_from(self.policy.open_ms).unwrap_or(i64::MAX / 2))
    }

    /// Closed with no failure counted: a success changes nothing and
    /// [`Self::check`] admits without changing anything.
    pub fn is_quiet(&self) -> bool {
        matches!(
            self.state,
            State::Closed {
                consecutive_failures: 0
            }
        )
    }

    /// Decides whether a request may go out now (and counts admitted probes).
    pub fn check(&mut self, now: DateTime<Utc>) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Allow,
            State::Open { until } if now < until => Admission::Reject { until },
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    probes_in_flight: 1,
                    since: now,
                };
                Admission::Probe
            }
            State::HalfOpen {
                probes_in_flight,
                since,
            } => {
                let stale = now >= since + self.open_for();
                if stale {
                    self.state = State::HalfOpen {
                        probes_in_flight: 1,
                        since: now,
                    };
                    Admission::Probe
                } else if probes_in_flight < self.policy.half_open_probes.max(1) {
                    self.state = State::HalfOpen {
                        probes_in_flight: probes_in_flight + 1,
                        since: now,
                    };
                    Admission::Probe
                } else {
                    Admission::Reject {
                        until: since + self.open_for(),
                    }
                }
            }
        }
    }

    /// Records a successful request.
    pub fn on_success(&mut self, _now: DateTime<Utc>) {
        match self.state {
            State::Closed { .. } | State::HalfOpen { .. } => {
                self.state = State::Closed {
                    consecutive_failures: 0,
                };
            }
            // A request admitted before the breaker opened: not evidence
            // enough to close it early.
            State::Open { .. } => {}
        }
    }

    /// Records a failed request (the caller decides what counts: typically
    /// timeouts, connection errors and 5xx).
    pub fn on_failure(&mut self, now: DateTime<Utc>) {
        match self.state {
            State::Closed {
                consecutive_failures,
            } => {
                let failures = consecutive_failures.saturating_add(1);
                self.state = if failures >= self.policy.failure_threshold.max(1) {
                    State::Open {
                        until: now + self.open_for(),
                    }
                } else {
                    State::Closed {
                        consecutive_failures: failures,
                    }
                };
            }
            State::HalfOpen { .. } => {
                self.state = State::Open {
                    until: now + self.open_for(),
                };
            }
            // Late failures of requests admitted earlier do not extend it.
            State::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn opened() -> Breaker {
        let mut b = Breaker::default();
        for _ in 0..5 {
            b.on_failure(t(0));
        }
        b
    }

    #[test]
    fn closed_allows_and_counts_failures() {
        let mut b = Breaker::default();
        assert_eq!(b.check(t(0)), Admission::Allow);
        for _ in 0..4 {
            b.on_failure(t(0));
        }
        assert_eq!(
            b.state,
            State::Closed {
                consecutive_failures: 4
            }
        );
        assert_eq!(b.check(t(0)), Admission::Allow);
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Breaker::default();
        b.on_failure(t(0));
        b.on_failure(t(0));
        b.on_success(t(0));
        assert_eq!(
            b.state,
            State::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn threshold_opens() {
        let mut b = opened();
        assert_eq!(b.state, State::Open { until: t(60) });
        assert_eq!(b.check(t(59)), Admission::Reject { until: t(60) });
    }

    #[test]
    fn open_ignores_late_reports() {
        let mut b = opened();
        b.on_failure(t(30));
        assert_eq!(b.state, State::Open { until: t(60) });
        b.on_success(t(30));
        assert_eq!(b.state, State::Open { until: t(60) });
    }

    #[test]
    fn open_becomes_half_open_after_the_wait() {
        let mut b = opened();
        assert_eq!(b.check(t(60)), Admission::Probe);
        assert_eq!(
            b.state,
            State::HalfOpen {
                probes_in_flight: 1,
                since: t(60)
            }
        );
        // Only one probe at a time.
        assert_eq!(b.check(t(61)), Admission::Reject { until: t(120) });
    }

    #[test]
    fn half_open_success_closes() {
        let mut b = opened();
        b.check(t(60));
        b.on_success(t(61));
        assert_eq!(
            b.state,
            State::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(b.check(t(62)), Admission::Allow);
    }

    #[test]
    fn half_open_failure_reopens() {
        let mut b = opened();
        b.check(t(60));
        b.on_failure(t(61));
        assert_eq!(b.state, State::Open { until: t(121) });
    }

    #[test]
    fn lost_probe_frees_its_slot() {
        let mut b = opened();
        b.check(t(60));
        assert_eq!(b.check(t(120)), Admission::Probe);
        assert_eq!(
            b.state,
            State::HalfOpen {
                probes_in_flight: 1,
                since: t(120)
            }
        );
    }

    #[test]
    fn several_probes_when_configured() {
        let mut b = Breaker::new(Policy {
            half_open_probes: 2,
            failure_threshold: 1,
            open_ms: 1000,
        });
        b.on_failure(t(0));
        assert_eq!(b.check(t(1)), Admission::Probe);
        assert_eq!(b.check(t(1)), Admission::Probe);
        assert!(matches!(b.check(t(1)), Admission::Reject { .. }));
    }

    #[test]
    fn serializes_as_flat_json() {
        let b = opened();
        let v = serde_json::to_value(b).unwrap();
        assert_eq!(v["state"], "open");
        assert_eq!(v["policy"]["failure_threshold"], 5);
        let back: Breaker = serde_json::from_value(v).unwrap();
        assert_eq!(back, b);
        let minimal: Breaker = serde_json::from_value(
            serde_json::json!({"state": "closed", "consecutive_failures": 0}),
        )
        .unwrap();
        assert_eq!(minimal, Breaker::default());
    }
}

//! MeshHook's Prometheus metrics: the process-wide counters and histograms
//! every role updates ([`METRICS`]), and [`render`], the text exposition
//! served at `/metrics` (docs/observability.md lists every series).
//!
//! Hot paths only touch atomics: label sets are fixed at compile time
//! (node types, verdicts, outcome classes), so an update is an index
//! lookup over a handful of `&'static str` and one `fetch_add`, never a
//! lock or an allocation. Gauges that come from the database (unfinished
//! runs, queues) are read at scrape time and cached for [`DB_CACHE`], so
//! frequent scrapes by several Prometheus servers cost one query set.
//!
//! Must not depend on axum or the engine crates: every role links it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshhook_db::PgPool;

/// How long database gauges are reused between scrapes.
pub const DB_CACHE: Duration = Duration::from_secs(5);

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A counter per label value; the last label is the catch-all.
pub struct Counters<const N: usize> {
    labels: [&'static str; N],
    values: [AtomicU64; N],
}

impl<const N: usize> Counters<N> {
    const fn new(labels: [&'static str; N]) -> Self {
        Self {
            labels,
            values: [const { AtomicU64::new(0) }; N],
        }
    }

    fn index(&self, label: &str) -> usize {
        self.labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or(N.saturating_sub(1))
    }

    /// Adds one to `label`'s counter (unknown labels count as the last one).
    pub fn inc(&self, label: &str) {
        self.values[self.index(label)].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value for `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.values[self.index(label)].load(Ordering::Relaxed)
    }

    fn write(&self, out: &mut String, name: &str, label: &str, help: &str) {
        header(out, name, "counter", help);
        for (l, v) in self.labels.iter().zip(&self.values) {
            let _ = writeln!(
                out,
                "{name}{{{label}=\"{l}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// A latency histogram with [`BUCKETS`] (cumulative on output).
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn write_series(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        } else {
            let _ = writeln!(
                out,
                "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}"
            );
        }
    }
}

/// A histogram per label value; the last label is the catch-all.
pub struct Histograms<const N: usize> {
    labels: [&'static str; N],
    values: [Histogram; N],
}

impl<const N: usize> Histograms<N> {
    const fn new(labels: [&'static str; N]) -> Self {
        Self {
            labels,
            values: [const { Histogram::new() }; N],
        }
    }

    /// The histogram of `label` (unknown labels share the last one).
    pub fn of(&self, label: &str) -> &Histogram {
        let i = self
            .labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or(N.saturating_sub(1));
        &self.values[i]
    }

    fn write(&self, out: &mut String, name: &str, label: &str, help: &str) {
        header(out, name, "histogram", help);
        for (l, h) in self.labels.iter().zip(&self.values) {
            h.write_series(out, name, &format!("{label}=\"{l}\""));
        }
    }
}

/// Every in-process metric. One per process ([`METRICS`]): in `meshhook
/// dev` all roles share it and `/metrics` shows them once.
pub struct Metrics {
    /// Webhook deliveries by verdict (API ingress).
    pub webhook_deliveries: Counters<12>,
    /// Step durations (step_started to its end) by node type, observed
    /// when a pass records the step's end.
    pub step_duration: Histograms<6>,
    /// Runs that reached a final status in this process, by status.
    pub runs_finished: Counters<4>,
    /// HTTP calls the executor made, by outcome class.
    pub http_calls: Counters<7>,
    /// Time to the response (or the failure) of each HTTP call.
    pub http_call_duration: Histogram,
    /// API requests by status class.
    pub api_requests: Counters<5>,
    /// API request latency (webhook ingress included).
    pub api_request_duration: Histogram,
}

/// The process's metrics.
pub static METRICS: Metrics = Metrics {
    webhook_deliveries: Counters::new([
        "accepted",
        "completed",
        "duplicate",
        "bad_signature",
        "rate_limited",
        "too_large",
        "invalid_payload",
        "disabled",
        "not_published",
        "unavailable",
        "unknown_webhook",
        "other",
    ]),
    step_duration: Histograms::new([
        "transform",
        "http_call",
        "branch",
        "delay",
        "terminate",
        "other",
    ]),
    runs_finished: Counters::new(["succeeded", "failed", "cancelled", "other"]),
    http_calls: Counters::new(["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "error"]),
    http_call_duration: Histogram::new(),
    api_requests: Counters::new(["1xx", "2xx", "3xx", "4xx", "5xx"]),
    api_request_duration: Histogram::new(),
};

/// The outcome class of an HTTP status: `"2xx"`, `"4xx"`, ...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, series: &[(String, f64)]) {
    header(out, name, "gauge", help);
    for (labels, v) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Gauges read from the database, cached for [`DB_CACHE`].
#[derive(Debug, Clone, Default)]
struct DbGauges {
    runs: Vec<(String, i64)>,
    queues: Vec<meshhook_db::queue::Metrics>,
    up: bool,
}

static DB_GAUGES: tokio::sync::Mutex<Option<(Instant, DbGauges)>> =
    tokio::sync::Mutex::const_new(None);

async fn db_gauges(pool: &PgPool) -> DbGauges {
    let mut cached = DB_GAUGES.lock().await;
    if let Some((at, g)) = cached.as_ref()
        && at.elapsed() < DB_CACHE
    {
        return g.clone();
    }
    let read = async {
        let mut conn = pool.acquire().await?;
        let runs = meshhook_db::metrics::unfinished_runs(&mut *conn).await?;
        let queues = meshhook_db::queue::metrics(&mut *conn).await?;
        Ok::<_, meshhook_db::Error>(DbGauges {
            runs,
            queues,
            up: true,
        })
    };
    let g = match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading metrics gauges failed");
            DbGauges::default()
        }
        Err(_) => {
            tracing::warn!("reading metrics gauges timed out");
            DbGauges::default()
        }
    };
    *cached = Some((Instant::now(), g.clone()));
    g
}

/// The Prometheus text exposition (format 0.0.4) of this process's
/// metrics and the database gauges, for `/metrics`.
pub async fn render(pool: &PgPool) -> String {
    let db = db_gauges(pool).await;
    let m = &METRICS;
    let mut out = String::with_capacity(16 * 1024);

    m.webhook_deliveries.write(
        &mut out,
        "meshhook_webhook_deliveries_total",
        "verdict",
        "Webhook deliveries received by this process, by verdict.",
    );
    m.step_duration.write(
        &mut out,
        "meshhook_step_duration_seconds",
        "node_type",
        "Step latency from start to end (retries included), by node type.",
    );
    m.runs_finished.write(
        &mut out,
        "meshhook_runs_finished_total",
        "status",
        "Runs that reached a final status in this process, by status.",
    );
    m.http_calls.write(
        &mut out,
        "meshhook_http_calls_total",
        "outcome",
        "HTTP calls made by the executor, by outcome (status class, timeout, error).",
    );
    header(
        &mut out,
        "meshhook_http_call_duration_seconds",
        "histogram",
        "Time to the response or failure of each executor HTTP call.",
    );
    m.http_call_duration
        .write_series(&mut out, "meshhook_http_call_duration_seconds", "");
    m.api_requests.write(
        &mut out,
        "meshhook_api_requests_total",
        "class",
        "API requests answered by this process, by status class.",
    );
    header(
        &mut out,
        "meshhook_api_request_duration_seconds",
        "histogram",
        "API request latency (webhook ingress included).",
    );
    m.api_request_duration
        .write_series(&mut out, "meshhook_api_request_duration_seconds", "");

    let runs: Vec<(String, f64)> = ["queued", "running", "waiting"]
        .iter()
        .map(|s| {
            let n = db.runs.iter().find(|(st, _)| st == s).map_or(0, |r| r.1);
            (format!("status=\"{s}\""), n as f64)
        })
        .collect();
    if db.up {
        gauge(
            &mut out,
            "meshhook_runs",
            "Unfinished runs in the database, by status (cached a few seconds).",
            &runs,
        );
    }
    let per_queue = |f: &dyn Fn(&meshhook_db::queue::Metrics) -> f64| -> Vec<(String, f64)> {
        db.queues
            .iter()
            .map(|q| (format!("queue=\"{}\"", escape(&q.queue)), f(q)))
            .collect()
    };
    gauge(
        &mut out,
        "meshhook_queue_depth",
        "Messages in the queue, visible or not.",
        &per_queue(&|q| q.depth as f64),
    );
    gauge(
        &mut out,
        "meshhook_queue_visible",
        "Messages ready to be read now.",
        &per_queue(&|q| q.visible as f64),
    );
    gauge(
        &mut out,
        "meshhook_queue_oldest_age_seconds",
        "Age of the oldest message in the queue (0 when empty).",
        &per_queue(&|q| q.oldest_age_s),
    );
    gauge(
        &mut out,
        "meshhook_queue_dead_letters",
        "Messages moved to the dead-letter table.",
        &per_queue(&|q| q.dead as f64),
    );
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    gauge(
        &mut out,
        "meshhook_db_pool_connections",
        "This process's database pool connections, by state.",
        &[
            ("state=\"idle\"".into(), f64::from(idle)),
            (
                "state=\"in_use\"".into(),
                f64::from(size.saturating_sub(idle)),
            ),
        ],
    );
    gauge(
        &mut out,
        "meshhook_db_pool_max_connections",
        "This process's database pool size limit.",
        &[(
            String::new(),
            f64::from(pool.options().get_max_connections()),
        )],
    );
    gauge(
        &mut out,
        "meshhook_db_up",
        "1 when the last gauge read reached the database.",
        &[(String::new(), if db.up { 1.0 } else { 0.0 })],
    );
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_fall_back_to_the_last_label() {
        let c = Counters::new(["a", "b", "other"]);
        c.inc("a");
        c.inc("zzz");
        c.inc("zzz");
        assert_eq!((c.get("a"), c.get("b"), c.get("other")), (1, 0, 2));
        let mut out = String::new();
        c.write(&mut out, "x_total", "k", "help");
        assert!(out.contains("# TYPE x_total counter\n"), "{out}");
        assert!(out.contains("x_total{k=\"other\"} 2\n"), "{out}");
    }

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::new();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(200));
        h.observe(Duration::from_secs(1000));
        let mut out = String::new();
        h.write_series(&mut out, "h", "t=\"x\"");
        assert!(out.contains("h_bucket{t=\"x\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"x\",le=\"0.25\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"x\",le=\"300\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"x\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("h_count{t=\"x\"} 3\n"), "{out}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}

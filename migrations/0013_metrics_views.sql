-- 0013: materialized views behind GET /api/v1/projects/{pid}/metrics.
--
-- The orchestrator refreshes them every MESHHOOK_METRICS_REFRESH_SECS
-- (default 60) with REFRESH MATERIALIZED VIEW CONCURRENTLY, so readers are
-- never blocked; CONCURRENTLY needs a unique index on plain columns that
-- covers every row, hence the UNIQUE indexes below (and no NULLs in their
-- key columns: a missing node id is stored as '').
--
-- Tenancy: a materialized view cannot have row-level security, so these
-- views are granted to nobody but their owner. The API reads them on its
-- service connection only after checking the caller's membership, always
-- with an explicit `project_id = $1` filter (meshhook_db::metrics).
--
-- The views cover the last 7 days, the longest window the endpoint offers;
-- `now()` is evaluated at each refresh.

-- Finished runs lets the success-rate views read the last days of runs
-- without scanning the whole table. Only the final update of a run sets
-- finished_at, so the other updates stay HOT-eligible.
CREATE INDEX runs_finished_idx ON meshhook.runs (finished_at) WHERE finished_at IS NOT NULL;

-- Finished runs per workflow and hour (by finish time).
CREATE MATERIALIZED VIEW meshhook.metrics_runs_hourly AS
SELECT project_id,
       workflow_id,
       date_trunc('hour', finished_at) AS bucket,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
FROM meshhook.runs
WHERE finished_at IS NOT NULL
  AND finished_at >= now() - interval '7 days'
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX metrics_runs_hourly_key ON meshhook.metrics_runs_hourly (project_id, workflow_id, bucket);

-- Step latency per workflow and node over fixed windows (percentiles do
-- not add up across buckets, so each window is computed on its own).
-- A step's latency is from its step_started event to its step_succeeded or
-- step_failed event (retries and backoff included).
CREATE MATERIALIZED VIEW meshhook.metrics_step_latency AS
WITH steps AS (
    SELECT s.project_id,
           r.workflow_id,
           s.data ->> 'node_id' AS node_id,
           f.type = 'step_failed' AS failed,
           f.at AS finished_at,
           (extract(epoch FROM f.at - s.at) * 1000.0)::float8 AS ms
    FROM meshhook.events s
    JOIN LATERAL (
        SELECT e.type, e.at
        FROM meshhook.events e
        WHERE e.run_id = s.run_id
          AND e.seq > s.seq
          AND e.type IN ('step_succeeded', 'step_failed')
          AND e.data ->> 'node_id' = s.data ->> 'node_id'
          AND e.at >= now() - interval '7 days'
        ORDER BY e.seq
        LIMIT 1
    ) f ON true
    JOIN meshhook.runs r ON r.id = s.run_id
    WHERE s.type = 'step_started'
      AND s.at >= now() - interval '7 days'
)
SELECT w.span_name AS span,
       steps.project_id,
       steps.workflow_id,
       steps.node_id,
       count(*) AS steps,
       count(*) FILTER (WHERE steps.failed) AS failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY steps.ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY steps.ms) AS p95_ms,
       max(steps.ms) AS max_ms
FROM steps
JOIN (VALUES ('1h', interval '1 hour'), ('24h', interval '24 hours'), ('7d', interval '7 days'))
    AS w (span_name, length) ON steps.finished_at >= now() - w.length
GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX metrics_step_latency_key ON meshhook.metrics_step_latency (span, project_id, workflow_id, node_id);

-- Failure hotspots: failed runs per workflow and the node that failed
-- them ('' when no node did, e.g. a run timeout), over the same windows.
CREATE MATERIALIZED VIEW meshhook.metrics_failure_hotspots AS
SELECT w.span_name AS span,
       r.project_id,
       r.workflow_id,
       coalesce(r.error ->> 'node_id', r.last_node_id, '') AS node_id,
       count(*) AS failures,
       max(r.finished_at) AS last_failed_at
FROM meshhook.runs r
JOIN (VALUES ('1h', interval '1 hour'), ('24h', interval '24 hours'), ('7d', interval '7 days'))
    AS w (span_name, length) ON r.finished_at >= now() - w.length
WHERE r.status = 'failed'
GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX metrics_failure_hotspots_key ON meshhook.metrics_failure_hotspots (span, project_id, workflow_id, node_id);

REVOKE ALL ON meshhook.metrics_runs_hourly, meshhook.metrics_step_latency, meshhook.metrics_failure_hotspots
    FROM PUBLIC, anon, authenticated;

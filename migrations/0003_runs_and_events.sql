-- 0003: runs, the append-only event log, webhook deliveries, shared
-- circuit-breaker state, and the partition maintenance functions.

-- One row per run: a cache of the fold of its events (the events are the
-- truth) plus what lists and filters need. `last_seq` serialises appends:
-- a writer appends seq N+1 only by moving last_seq from N to N+1 in the same
-- transaction (UPDATE ... WHERE last_seq = N), so two workers never both
-- write the same seq and the per-run sequence stays gapless.
CREATE TABLE meshhook.runs (
    id                  uuid PRIMARY KEY,
    project_id          uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    workflow_id         uuid NOT NULL REFERENCES meshhook.workflows (id) ON DELETE CASCADE,
    workflow_version_id uuid REFERENCES meshhook.workflow_versions (id) ON DELETE SET NULL,
    version             integer,               -- NULL for test runs of a draft
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    trigger_kind        text NOT NULL DEFAULT 'webhook'
                        CHECK (trigger_kind IN ('webhook', 'test', 'resume', 'manual', 'rerun')),
    trigger             jsonb NOT NULL,        -- {body, headers, query}
    webhook_id          uuid REFERENCES meshhook.webhooks (id) ON DELETE SET NULL,
    idempotency_key     text,                  -- dedupe key of the delivery that started it
    parent_run_id       uuid REFERENCES meshhook.runs (id) ON DELETE SET NULL,
    resumed_from_node   text,
    -- A test run executes a draft: its definition is carried here because no
    -- version row exists for it.
    definition          jsonb,
    last_seq            bigint NOT NULL DEFAULT 0,
    output              jsonb,
    error               jsonb,                 -- {message, node_id?}
    last_node_id        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    timeout_at          timestamptz
);
-- Dedupe: one run per (webhook, idempotency key), enforced by the database
-- so concurrent duplicate deliveries cannot both start a run.
CREATE UNIQUE INDEX runs_webhook_idempotency_key ON meshhook.runs (webhook_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Hot paths: the run list (newest first, cursor on (created_at, id)), runs of
-- a workflow by status, the dead-letter view, and unfinished runs.
CREATE INDEX runs_project_created_idx ON meshhook.runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_workflow_status_idx ON meshhook.runs (workflow_id, status, created_at DESC);
CREATE INDEX runs_failed_idx ON meshhook.runs (project_id, finished_at DESC) WHERE status = 'failed';
CREATE INDEX runs_active_idx ON meshhook.runs (status) WHERE status IN ('queued', 'running', 'waiting');
CREATE INDEX runs_parent_idx ON meshhook.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- The event log: every fact about a run, in order. Append-only; rows are
-- never updated. Range-partitioned by month on `at` so that retention drops
-- whole partitions instead of deleting rows. Uniqueness of (run_id, seq) is
-- guaranteed by the last_seq protocol above (a global unique index would
-- have to include `at`).
CREATE TABLE meshhook.events (
    run_id     uuid NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    project_id uuid NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (at);
CREATE INDEX events_run_seq_idx ON meshhook.events (run_id, seq);
CREATE INDEX events_project_at_idx ON meshhook.events (project_id, at);

-- Catches rows no monthly partition covers (maintenance late or clock
-- skew): an insert must never fail for want of a partition.
CREATE TABLE meshhook.events_default PARTITION OF meshhook.events DEFAULT;

CREATE TRIGGER events_immutable BEFORE UPDATE ON meshhook.events
    FOR EACH ROW EXECUTE FUNCTION meshhook.reject_update();

-- The webhook request log: one row per delivery attempt, accepted or not.
CREATE TABLE meshhook.webhook_deliveries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id   uuid NOT NULL REFERENCES meshhook.webhooks (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    received_at  timestamptz NOT NULL DEFAULT now(),
    verdict      text NOT NULL,                -- accepted, duplicate, bad_signature, rate_limited, too_large, invalid_payload, ...
    status_code  integer NOT NULL,
    run_id       uuid,
    dedupe_key   text,
    detail       text,
    latency_ms   double precision,
    remote_addr  inet
);
CREATE INDEX webhook_deliveries_webhook_idx ON meshhook.webhook_deliveries (webhook_id, received_at DESC, id DESC);
CREATE INDEX webhook_deliveries_project_idx ON meshhook.webhook_deliveries (project_id, received_at);

-- Per-target-host circuit breakers, shared by every executor. `state` is
-- the core crate's serialised breaker.
CREATE TABLE meshhook.circuit_breakers (
    host       text PRIMARY KEY,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Partition maintenance -------------------------------------------------

-- Creates the monthly partitions of `parent` (a table partitioned by range
-- on a timestamptz) for the current month and `months_ahead` months after
-- it. Rows already sitting in the default partition for a new month are
-- moved into it, so the attach never fails. Returns the partitions created.
CREATE FUNCTION meshhook.ensure_monthly_partitions(parent regclass, months_ahead integer DEFAULT 2)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    parent_schema text;
    parent_name   text;
    default_part  regclass;
    part_col      text;
    month_start   timestamptz;
    lo            timestamptz;
    hi            timestamptz;
    part_name     text;
BEGIN
    SELECT n.nspname, c.relname INTO parent_schema, parent_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = parent;

    SELECT a.attname INTO part_col
    FROM pg_partitioned_table pt
    JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
    WHERE pt.partrelid = parent;
    IF part_col IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned table', parent;
    END IF;

    SELECT i.inhrelid::regclass INTO default_part
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';

    month_start := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    FOR i IN 0..months_ahead LOOP
        lo := ((month_start AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := ((month_start AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part_name := format('%s_p%s', parent_name, to_char(lo AT TIME ZONE 'UTC', 'YYYYMM'));
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, part_name)) IS NOT NULL;

        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       parent_schema, part_name, parent);
        IF default_part IS NOT NULL THEN
            EXECUTE format(
                'WITH moved AS (DELETE FROM %s WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I.%I SELECT * FROM moved',
                default_part, part_col, lo, part_col, hi, parent_schema, part_name);
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, parent_schema, part_name, lo, hi);
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', parent_schema, part_name);
        RETURN NEXT part_name;
    END LOOP;
END
$$;

-- Drops the monthly partitions of `parent` whose whole range ended more
-- than `retention` ago. Dropping a partition is O(1) and takes no row
-- locks, unlike DELETE. Returns the partitions dropped.
CREATE FUNCTION meshhook.drop_expired_partitions(parent regclass, retention interval)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part  record;
    upper timestamptz;
BEGIN
    FOR part IN
        SELECT i.inhrelid::regclass AS rel, c.relname,
               pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
    LOOP
        CONTINUE WHEN part.bound = 'DEFAULT';
        upper := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper IS NOT NULL AND upper <= now() - retention THEN
            EXECUTE format('DROP TABLE %s', part.rel);
            RETURN NEXT part.relname::text;
        END IF;
    END LOOP;
END
$$;

SELECT meshhook.ensure_monthly_partitions('meshhook.events', 2);

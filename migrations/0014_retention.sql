-- 0014: per-project retention of runs, events and delivery-log rows.
--
-- `projects.retention_days` (default 30) says how long a project keeps a
-- finished run (with its events) and its webhook delivery-log rows.
-- `meshhook_db::retention::prune`, run by the orchestrator's maintenance
-- loop, deletes expired rows in small batches (one short transaction per
-- batch, so no long locks) and then drops whole event partitions that no
-- project needs any more (`drop_expired_event_partitions`, below). Runs that
-- have not finished (queued, running, or waiting on a delay) are never
-- pruned, whatever their age, and neither is a partition holding one of
-- their events.
--
-- Adding a column with a constant default rewrites nothing.

ALTER TABLE meshhook.projects
    ADD COLUMN retention_days integer NOT NULL DEFAULT 30,
    ADD CONSTRAINT projects_retention_days_range CHECK (retention_days BETWEEN 1 AND 3650);

-- Dead-lettered queue messages are kept this long (instance-wide).
INSERT INTO meshhook.settings (key, value) VALUES ('queue_dead_letter_retention_days', '30')
ON CONFLICT (key) DO NOTHING;

-- Drops the monthly partitions of meshhook.events whose range ended more
-- than `horizon` ago, except a partition that still holds an event of an
-- unfinished run. Each drop waits at most `lock_wait` for its lock and is
-- skipped (retried at the next pass) if it cannot get it, so maintenance
-- never queues behind a long reader and never blocks writers for long.
CREATE FUNCTION meshhook.drop_expired_event_partitions(horizon interval, lock_wait interval)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part  record;
    upper timestamptz;
    busy  boolean;
BEGIN
    FOR part IN
        SELECT i.inhrelid::regclass AS rel, c.relname,
               pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'meshhook.events'::regclass
    LOOP
        CONTINUE WHEN part.bound = 'DEFAULT';
        upper := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        CONTINUE WHEN upper IS NULL OR upper > now() - horizon;
        EXECUTE format(
            'SELECT EXISTS (SELECT 1 FROM meshhook.runs r
                            WHERE r.status IN (''queued'', ''running'', ''waiting'')
                              AND EXISTS (SELECT 1 FROM %s e WHERE e.run_id = r.id))',
            part.rel) INTO busy;
        CONTINUE WHEN busy;
        BEGIN
            PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text, true);
            EXECUTE format('DROP TABLE %s', part.rel);
            RETURN NEXT part.relname::text;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'partition % is busy; it will be dropped at a later pass', part.relname;
        END;
    END LOOP;
END
$$;

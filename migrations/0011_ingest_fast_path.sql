-- 0011: the ingest fast path.
--
-- Two costs that grow with every accepted webhook delivery, removed without
-- giving up integrity:
--
-- 1. Notifications. A writer may send them after its commit (below).
-- 2. Per-row foreign-key checks. PostgreSQL checks a foreign key with one
--    query per inserted row (a plan started, an index probed, the parent
--    row locked FOR KEY SHARE); a run insert had four of them and a
--    delivery-log row two, a third of the database's CPU under load. Those
--    constraints are replaced by (a) one lock per batch on the parents the
--    writer refers to (`runs::insert_many` locks each distinct workflow row
--    FOR KEY SHARE and fails if one is gone; the delivery-log insert locks
--    its webhooks), so a concurrent delete waits for the writer's commit,
--    and (b) delete triggers that do what ON DELETE CASCADE did. A run's
--    webhook_id and workflow_version_id are kept as plain historical ids.

--
-- PostgreSQL serialises the commits of all transactions that NOTIFY: the
-- first takes a database-wide lock in pre-commit and holds it until its
-- commit record is flushed, so concurrent notifying transactions cannot
-- share a WAL flush (group commit) — each waits for the previous one's
-- fsync. The webhook ingress commits many small batches at once and must
-- not be limited by that, so a transaction that sets
--     SELECT set_config('meshhook.notify', 'deferred', true)
-- skips the queue and event notification triggers; the writer then sends
-- the same notifications itself, after its commit, from a tiny transaction
-- that commits asynchronously (meshhook_db::notify). Notifications only wake
-- listeners early — every listener also polls — so one lost in a crash
-- between the two commits delays a wake-up and loses nothing.

CREATE OR REPLACE FUNCTION meshhook.queue_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('meshhook.notify', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('meshhook_queue', q.queue) FROM (SELECT DISTINCT queue FROM new_rows) q;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meshhook.events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF current_setting('meshhook.notify', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    FOR r IN
        SELECT run_id, project_id, min(seq) AS first_seq, max(seq) AS last_seq
        FROM appended GROUP BY run_id, project_id
    LOOP
        PERFORM pg_notify('meshhook_events',
            r.run_id::text || ' ' || r.project_id::text || ' ' || r.first_seq || ' ' || r.last_seq);
    END LOOP;
    RETURN NULL;
END
$$;

-- Runs: project and workflow cascade through the workflow (a project's
-- workflows cascade from the project); versions are deleted only with their
-- workflow; a run keeps the id of the webhook that started it.
ALTER TABLE meshhook.runs
    DROP CONSTRAINT runs_project_id_fkey,
    DROP CONSTRAINT runs_workflow_id_fkey,
    DROP CONSTRAINT runs_workflow_version_id_fkey,
    DROP CONSTRAINT runs_webhook_id_fkey;

CREATE FUNCTION meshhook.delete_runs_of_workflows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM meshhook.runs r USING gone g WHERE r.workflow_id = g.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER workflows_delete_runs AFTER DELETE ON meshhook.workflows
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION meshhook.delete_runs_of_workflows();

-- Delivery-log rows go with their webhook (a project's webhooks cascade
-- from the project).
ALTER TABLE meshhook.webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_webhook_id_fkey,
    DROP CONSTRAINT webhook_deliveries_project_id_fkey;

CREATE FUNCTION meshhook.delete_deliveries_of_webhooks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM meshhook.webhook_deliveries d USING gone g WHERE d.webhook_id = g.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_delete_deliveries AFTER DELETE ON meshhook.webhooks
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION meshhook.delete_deliveries_of_webhooks();

-- 0007: tell listeners when a run finishes.
--
-- Synchronous webhooks wait for their run's terminate output. Polling the
-- runs table from every waiting request would cost a query per waiter per
-- tick; instead each API process keeps one LISTEN connection on
-- `meshhook_run_finished` and wakes its waiters by run id. The payload is
-- the run id only (never the output: NOTIFY payloads are limited to 8000
-- bytes and readable by any role that can LISTEN); waiters read the row.
--
-- AFTER UPDATE OF status, only on the transition into a terminal status,
-- so the engine's other updates (last_seq, output) send nothing.
-- Notifications are delivered at commit, so a waiter woken by one always
-- sees the committed row.
CREATE FUNCTION meshhook.notify_run_finished() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('meshhook_run_finished', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_finished_notify
    AFTER UPDATE OF status ON meshhook.runs
    FOR EACH ROW
    WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION meshhook.notify_run_finished();

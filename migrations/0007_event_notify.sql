-- The live feed: every statement that appends events notifies
-- `meshhook_events` once per run it touched, with ids only —
-- "<run_id> <project_id> <first seq> <last seq>" — so the 8 KB payload limit
-- never matters and a lost notification loses nothing: listeners fetch the
-- rows themselves, by seq, and refetch on a timer. Sent at commit, so a
-- listener never sees a notification for rows it cannot read yet.
CREATE FUNCTION meshhook.events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
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

CREATE TRIGGER events_notify AFTER INSERT ON meshhook.events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION meshhook.events_notify();

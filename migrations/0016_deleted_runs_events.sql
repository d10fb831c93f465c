-- Events of runs deleted with their workflow (or its project).
--
-- The events table is partitioned and has no foreign key to runs (0003), so
-- deleting a workflow removed its runs (0011's trigger) but left their
-- events behind until retention dropped the whole partition. The delete now
-- records the gone runs' ids, and the retention pass (meshhook_db::retention)
-- deletes their events in short batches — the delete itself stays one quick
-- statement however long the runs' logs are.

CREATE TABLE meshhook.deleted_runs (
    run_id     uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_runs_deleted_at_idx ON meshhook.deleted_runs (deleted_at);
REVOKE ALL ON meshhook.deleted_runs FROM PUBLIC;
-- Internal: no policy, no grant; only the owner (migrations, the pruner and
-- the SECURITY DEFINER trigger below) touches it.
ALTER TABLE meshhook.deleted_runs ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION meshhook.delete_runs_of_workflows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    WITH d AS (
        DELETE FROM meshhook.runs r USING gone g WHERE r.workflow_id = g.id RETURNING r.id
    )
    INSERT INTO meshhook.deleted_runs (run_id) SELECT id FROM d ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- 0005: row-level security on every table of the schema.
--
-- The API runs each request in a transaction that sets the caller's claims
-- (`request.jwt.claims`) and `SET LOCAL ROLE authenticated`; these policies
-- then decide what is visible, so isolation holds even if a handler forgets
-- a filter. Workers connect as the owning role, which RLS does not restrict
-- (the owner is the "service role" of this schema).
--
-- Roles rank viewer (1) < editor (2) < admin (3) < owner (4):
--   viewer reads; editor edits workflows, publishes, runs, manages webhooks;
--   admin also manages secrets, members and API keys; owner also deletes the project.
--
-- A project API key acts with claims {"sub": <key id>, "mh_project": <project>,
-- "mh_role": <role>} that only the API server composes after checking the key
-- (it never forwards claims from a token it did not build).

CREATE FUNCTION meshhook.role_rank(role text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE role WHEN 'owner' THEN 4 WHEN 'admin' THEN 3 WHEN 'editor' THEN 2 WHEN 'viewer' THEN 1 ELSE 0 END
$$;

-- The ids of the projects where the caller holds at least `min_rank`.
-- SECURITY DEFINER: it reads project_members without recursing into that
-- table's own policies. Policies use it as `project_id IN (SELECT ...)`, an
-- uncorrelated subquery PostgreSQL evaluates once per statement (a hashed
-- subplan), not once per row.
CREATE FUNCTION meshhook.my_projects(min_rank integer) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH claims AS (
        SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb AS c
    )
    SELECT (c ->> 'mh_project')::uuid FROM claims
    WHERE c ? 'mh_project' AND meshhook.role_rank(c ->> 'mh_role') >= min_rank
    UNION
    SELECT m.project_id FROM meshhook.project_members m
    WHERE m.user_id = auth.uid() AND meshhook.role_rank(m.role) >= min_rank
      AND NOT EXISTS (SELECT 1 FROM claims WHERE c ? 'mh_project')
$$;

-- Creates a project and makes the caller its owner, atomically (the owner
-- row could not be inserted under the members policy before it exists).
CREATE FUNCTION meshhook.create_project(project_name text) RETURNS meshhook.projects
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    uid uuid := auth.uid();
    p   meshhook.projects;
BEGIN
    IF uid IS NULL OR nullif(current_setting('request.jwt.claims', true), '')::jsonb ? 'mh_project' THEN
        RAISE EXCEPTION 'only a signed-in user can create a project' USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO meshhook.projects (name, created_by) VALUES (project_name, uid) RETURNING * INTO p;
    INSERT INTO meshhook.project_members (project_id, user_id, role) VALUES (p.id, uid, 'owner');
    RETURN p;
END
$$;
REVOKE ALL ON FUNCTION meshhook.create_project(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION meshhook.create_project(text) TO authenticated;
GRANT EXECUTE ON FUNCTION meshhook.my_projects(integer), meshhook.role_rank(text) TO authenticated;

-- Enable RLS everywhere in the schema: tables without a policy for
-- `authenticated` are simply invisible to it.
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'meshhook' AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel);
    END LOOP;
END
$$;

-- Table privileges for the request role; RLS narrows them to rows.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    meshhook.projects, meshhook.project_members, meshhook.api_keys,
    meshhook.workflows, meshhook.webhooks, meshhook.secrets, meshhook.runs
    TO authenticated;
GRANT SELECT, INSERT ON meshhook.workflow_versions, meshhook.events, meshhook.audit_log TO authenticated;
GRANT SELECT ON meshhook.webhook_deliveries TO authenticated;
GRANT SELECT (id, email, created_at) ON meshhook.users TO authenticated;

-- users: yourself, and the members of projects you share.
CREATE POLICY users_select ON meshhook.users FOR SELECT TO authenticated
    USING (id = (SELECT auth.uid()) OR id IN (
        SELECT m.user_id FROM meshhook.project_members m
        WHERE m.project_id IN (SELECT meshhook.my_projects(1))));

-- projects
CREATE POLICY projects_select ON meshhook.projects FOR SELECT TO authenticated
    USING (id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY projects_update ON meshhook.projects FOR UPDATE TO authenticated
    USING (id IN (SELECT meshhook.my_projects(3)));
CREATE POLICY projects_delete ON meshhook.projects FOR DELETE TO authenticated
    USING (id IN (SELECT meshhook.my_projects(4)));

-- project_members: everyone in the project sees the roster; admins manage it.
CREATE POLICY members_select ON meshhook.project_members FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY members_insert ON meshhook.project_members FOR INSERT TO authenticated
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(3)));
CREATE POLICY members_update ON meshhook.project_members FOR UPDATE TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)));
CREATE POLICY members_delete ON meshhook.project_members FOR DELETE TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)));

-- api_keys: admins only.
CREATE POLICY api_keys_all ON meshhook.api_keys FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(3)));

-- Editor-writable resources: workflows, webhooks, runs.
CREATE POLICY workflows_select ON meshhook.workflows FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY workflows_write ON meshhook.workflows FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(2)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(2)));

CREATE POLICY webhooks_select ON meshhook.webhooks FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY webhooks_write ON meshhook.webhooks FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(2)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(2)));

CREATE POLICY runs_select ON meshhook.runs FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY runs_write ON meshhook.runs FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(2)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(2)));

-- Append-only, editor-written: versions and events.
CREATE POLICY workflow_versions_select ON meshhook.workflow_versions FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY workflow_versions_insert ON meshhook.workflow_versions FOR INSERT TO authenticated
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(2)));

CREATE POLICY events_select ON meshhook.events FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY events_insert ON meshhook.events FOR INSERT TO authenticated
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(2)));

-- Delivery log: read by members, written by the ingress (service role).
CREATE POLICY webhook_deliveries_select ON meshhook.webhook_deliveries FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));

-- Secrets: names visible to members (editors reference them in workflows);
-- values are ciphertext and never returned by the API. Admins write.
CREATE POLICY secrets_select ON meshhook.secrets FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY secrets_write ON meshhook.secrets FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(3)));

-- Audit log: admins read; any member's request may append its own actions.
CREATE POLICY audit_log_select ON meshhook.audit_log FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)));
CREATE POLICY audit_log_insert ON meshhook.audit_log FOR INSERT TO authenticated
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(1)));

-- 0001: roles, the `auth` schema shim and the `meshhook` schema.
--
-- MeshHook's tables live in their own schema so that the project can be
-- applied to a Supabase database next to Supabase's own objects without
-- name clashes. Row-level security (0005) is written against the same
-- primitives Supabase uses: the `anon`, `authenticated` and `service_role`
-- roles and `auth.uid()`, which reads the caller's id from the
-- `request.jwt.claims` setting. On Supabase those already exist and are
-- left alone; on a plain PostgreSQL they are created here.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$$;

-- The API connects as the migrating user and switches to `authenticated`
-- for each request (`SET LOCAL ROLE`), which requires membership. On
-- Supabase the `postgres` user already is a member; granting again is a
-- no-op, and lacking the privilege to grant is not fatal there.
DO $$
BEGIN
    EXECUTE format('GRANT anon, authenticated, service_role TO %I', current_user);
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
    RAISE NOTICE 'could not grant API roles to %, assuming they are already granted', current_user;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;

-- auth.uid(): the caller's user id from the JWT claims, NULL when absent.
-- Created only when missing so that Supabase's own definition wins.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'auth' AND p.proname = 'uid'
    ) THEN
        CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE
        AS $fn$
            SELECT nullif(
                coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                ),
                ''
            )::uuid
        $fn$;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

CREATE SCHEMA IF NOT EXISTS meshhook;
GRANT USAGE ON SCHEMA meshhook TO authenticated, service_role;

-- Instance-wide settings (retention defaults and the like), edited by
-- operators; never by tenants.
CREATE TABLE meshhook.settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO meshhook.settings (key, value) VALUES
    ('events_retention_days', '30'),
    ('queue_archive_retention_days', '7');

-- 0002: users, projects, members, API keys, workflows and versions,
-- webhooks, secrets, the audit log.
--
-- Every tenant row carries `project_id` (denormalised where a parent row
-- would also tell) so that one row-level-security predicate, evaluated
-- without joins, decides visibility.

-- Built-in email/password users for the embedded default. On Supabase the
-- JWT `sub` is a Supabase user id; such users need no row here until the
-- API first sees them (it upserts one by id and email).
CREATE TABLE meshhook.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    password_hash text,                           -- argon2id PHC string; NULL for external (Supabase) users
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_not_blank CHECK (length(btrim(email)) > 0)
);
-- Emails are compared case-insensitively.
CREATE UNIQUE INDEX users_email_key ON meshhook.users (lower(email));

-- Rotating refresh tokens, stored as SHA-256 hashes. A token is used once:
-- refreshing revokes it and issues its successor in the same family;
-- presenting a revoked token revokes the whole family (theft detection).
CREATE TABLE meshhook.refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES meshhook.users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_idx ON meshhook.refresh_tokens (family_id);

CREATE TABLE meshhook.projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- Per-project settings: PII redaction rules, retention overrides.
    settings   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE meshhook.project_members (
    project_id uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES meshhook.users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON meshhook.project_members (user_id);

-- Project API keys: `mh_` + random, shown once; only the SHA-256 hash and a
-- short prefix (for display) are kept. A key acts with its own role.
CREATE TABLE meshhook.api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    key_prefix   text NOT NULL,
    key_hash     bytea NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_project_idx ON meshhook.api_keys (project_id);

-- A workflow's mutable draft. Publishing freezes a copy in workflow_versions.
CREATE TABLE meshhook.workflows (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    definition jsonb NOT NULL DEFAULT '{"nodes": [], "edges": []}'::jsonb,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_project_idx ON meshhook.workflows (project_id, updated_at DESC);

-- Immutable published versions (v1, v2, ...). `content_hash` is the SHA-256
-- of the canonical definition: publishing an unchanged draft finds the
-- existing version instead of creating a duplicate.
CREATE TABLE meshhook.workflow_versions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id  uuid NOT NULL REFERENCES meshhook.workflows (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version > 0),
    definition   jsonb NOT NULL,
    content_hash text NOT NULL,
    published_by uuid,
    published_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_versions_workflow_version_key UNIQUE (workflow_id, version),
    CONSTRAINT workflow_versions_workflow_hash_key UNIQUE (workflow_id, content_hash)
);

-- Versions are facts: nobody updates them, whatever their privileges.
CREATE FUNCTION meshhook.reject_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE ON meshhook.workflow_versions
    FOR EACH ROW EXECUTE FUNCTION meshhook.reject_update();

-- Webhook triggers. `token` is the unguessable part of /hooks/{token}.
-- `signing_keys` holds the encrypted signing secrets: the current one and,
-- during rotation, the previous one with its expiry
-- ([{"id", "ciphertext", "nonce", "wrapped_dek", "dek_nonce", "kek_id", "expires_at"}]).
CREATE TABLE meshhook.webhooks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    workflow_id    uuid NOT NULL REFERENCES meshhook.workflows (id) ON DELETE CASCADE,
    token          text NOT NULL,
    verification   jsonb NOT NULL DEFAULT '{"scheme": "none"}'::jsonb,
    signing_keys   jsonb NOT NULL DEFAULT '[]'::jsonb,
    mode           jsonb NOT NULL DEFAULT '"async"'::jsonb,
    rate_limit     jsonb,
    payload_schema jsonb,
    max_body_bytes integer NOT NULL DEFAULT 1048576 CHECK (max_body_bytes BETWEEN 1 AND 104857600),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_token_key UNIQUE (token)
);
CREATE INDEX webhooks_workflow_idx ON meshhook.webhooks (workflow_id);

-- Secrets: envelope encryption. The value is sealed with a fresh data key
-- (AES-256-GCM); the data key is sealed with the key-encryption key named by
-- `kek_id`. Associated data binds both to (project_id, name).
CREATE TABLE meshhook.secrets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    ciphertext  bytea NOT NULL,
    nonce       bytea NOT NULL,
    wrapped_dek bytea NOT NULL,
    dek_nonce   bytea NOT NULL,
    kek_id      text NOT NULL,
    hint        text NOT NULL,                 -- masked form for display, e.g. "sk_…f3a9"
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secrets_project_name_key UNIQUE (project_id, name)
);
CREATE INDEX secrets_kek_idx ON meshhook.secrets (kek_id);

-- Who did what, when, from where. Append-only.
CREATE TABLE meshhook.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  uuid REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    actor_id    uuid,                          -- user id, API key id, or NULL for the system
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'system', 'worker')),
    action      text NOT NULL,                 -- e.g. secret.create, workflow.publish, secret.decrypt
    target_type text,
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip          inet,
    user_agent  text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_project_idx ON meshhook.audit_log (project_id, at DESC);
CREATE TRIGGER audit_log_immutable BEFORE UPDATE ON meshhook.audit_log
    FOR EACH ROW EXECUTE FUNCTION meshhook.reject_update();

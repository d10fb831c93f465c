-- 0015: alert rules and their deliveries.
--
-- A rule watches one project (optionally one workflow) for
--   run_failed    every run that fails (one alert per run),
--   failure_rate  failed / finished runs over `window_secs` at or above
--                 `threshold` (0..1) with at least `min_runs` finished,
--   queue_lag     the oldest visible message of a work queue older than
--                 `threshold` seconds (queues are shared by all projects),
-- and posts a JSON alert to `url`, signed with the Standard Webhooks scheme
-- (`webhook-id`, `webhook-timestamp`, `webhook-signature`) under the rule's
-- own `whsec_` secret, sealed with the vault's envelope encryption like
-- project secrets. The HTTP executor evaluates rules and delivers alerts
-- (through its SSRF guard), retrying failed deliveries with backoff; every
-- attempt is recorded in alert_deliveries.

CREATE TABLE meshhook.alert_rules (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL REFERENCES meshhook.projects (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    kind         text NOT NULL CHECK (kind IN ('run_failed', 'failure_rate', 'queue_lag')),
    workflow_id  uuid REFERENCES meshhook.workflows (id) ON DELETE CASCADE,
    threshold    double precision,
    window_secs  integer NOT NULL DEFAULT 3600 CHECK (window_secs BETWEEN 60 AND 604800),
    min_runs     integer NOT NULL DEFAULT 10 CHECK (min_runs >= 1),
    cooldown_secs integer NOT NULL DEFAULT 900 CHECK (cooldown_secs BETWEEN 0 AND 604800),
    url          text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    -- The signing secret, sealed (meshhook_db::vault).
    ciphertext   bytea NOT NULL,
    nonce        bytea NOT NULL,
    wrapped_dek  bytea NOT NULL,
    dek_nonce    bytea NOT NULL,
    kek_id       text NOT NULL,
    -- run_failed: failed runs finished after this were alerted.
    checked_until timestamptz NOT NULL DEFAULT now(),
    last_fired_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_project_idx ON meshhook.alert_rules (project_id, created_at);

CREATE TABLE meshhook.alert_deliveries (
    id            uuid PRIMARY KEY,
    rule_id       uuid NOT NULL REFERENCES meshhook.alert_rules (id) ON DELETE CASCADE,
    project_id    uuid NOT NULL,
    type          text NOT NULL,
    payload       jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz
);
CREATE INDEX alert_deliveries_rule_idx ON meshhook.alert_deliveries (rule_id, created_at DESC);
CREATE INDEX alert_deliveries_due_idx ON meshhook.alert_deliveries (next_attempt_at) WHERE status = 'pending';
-- One alert per failed run and rule, however many evaluators race.
CREATE UNIQUE INDEX alert_deliveries_run_once ON meshhook.alert_deliveries (rule_id, (payload ->> 'run_id'))
    WHERE type = 'alert.run_failed';

ALTER TABLE meshhook.alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE meshhook.alert_deliveries ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON meshhook.alert_rules TO authenticated;
GRANT SELECT, INSERT ON meshhook.alert_deliveries TO authenticated;
-- Members read rules and the delivery log; admins manage rules and send tests.
CREATE POLICY alert_rules_select ON meshhook.alert_rules FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY alert_rules_write ON meshhook.alert_rules FOR ALL TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(3)))
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(3)));
CREATE POLICY alert_deliveries_select ON meshhook.alert_deliveries FOR SELECT TO authenticated
    USING (project_id IN (SELECT meshhook.my_projects(1)));
CREATE POLICY alert_deliveries_insert ON meshhook.alert_deliveries FOR INSERT TO authenticated
    WITH CHECK (project_id IN (SELECT meshhook.my_projects(3)));

-- Finished runs by time, per project (failure-rate rules). Partial: a run
-- enters it only when it finishes, so webhook ingest does not pay for it.
CREATE INDEX runs_project_finished_idx ON meshhook.runs (project_id, finished_at)
    WHERE finished_at IS NOT NULL;

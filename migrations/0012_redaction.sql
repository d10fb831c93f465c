-- 0012: per-project PII redaction rules.
--
-- `redaction` holds a project's rules as the API speaks them
-- (meshhook_core::redact::Rules: {enabled, emails, card_numbers, tokens,
-- keys, patterns}); NULL means the defaults (every built-in rule on, no
-- custom keys or patterns), so existing projects are covered without a
-- backfill and a later change of the defaults reaches every project that
-- never chose its own. The API validates the rules (regexes compile)
-- before it writes them; the check below only keeps the column an object.
--
-- A column of its own rather than a key of `projects.settings`: a PUT
-- replaces it whole with one UPDATE, no read-modify-write of a document
-- other settings share.
--
-- Row-level security is unchanged and already right: members (viewer and
-- up) read the row through `projects_select`, and only admins and owners
-- may UPDATE it (`projects_update`, rank 3). Adding a nullable column with
-- no default does not rewrite the table.

ALTER TABLE meshhook.projects
    ADD COLUMN redaction jsonb,
    ADD CONSTRAINT projects_redaction_is_object
        CHECK (redaction IS NULL OR jsonb_typeof(redaction) = 'object');

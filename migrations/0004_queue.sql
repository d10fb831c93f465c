-- 0004: the durable queue (pgmq-style, in plain tables).
--
-- Why tables of our own instead of the pgmq extension: Debian ships no pgmq
-- package, so the embedded default could not load the extension; pgmq's
-- per-queue tables need dynamic SQL for every call; and one shared table
-- keeps every queue operation a static, prepared statement that composes
-- with the caller's transaction. The semantics are pgmq's: a message is
-- invisible until `vt`; reading moves `vt` forward and counts `read_ct`;
-- acking deletes (or archives) it; a message read more than the queue's
-- `max_reads` times moves to the dead-letter table.

CREATE TABLE meshhook.queues (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    max_reads  integer NOT NULL DEFAULT 10 CHECK (max_reads > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO meshhook.queues (name, max_reads) VALUES
    ('orchestrator', 20),   -- run wake-ups: fold + decide
    ('executor', 20);       -- HTTP jobs

-- The hot table: kept small (acked messages are deleted or moved to the
-- archive). Fillfactor leaves room for HOT updates of read_ct.
CREATE TABLE meshhook.queue_messages (
    msg_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue       text NOT NULL REFERENCES meshhook.queues (name),
    vt          timestamptz NOT NULL DEFAULT now(),
    read_ct     integer NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    message     jsonb NOT NULL
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);
-- read() walks this index: visible messages of a queue, oldest vt first.
CREATE INDEX queue_messages_queue_vt_idx ON meshhook.queue_messages (queue, vt);

-- Acked messages kept for inspection, partitioned by month for cheap pruning.
CREATE TABLE meshhook.queue_archive (
    msg_id      bigint NOT NULL,
    queue       text NOT NULL,
    read_ct     integer NOT NULL,
    enqueued_at timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    message     jsonb NOT NULL
) PARTITION BY RANGE (archived_at);
CREATE TABLE meshhook.queue_archive_default PARTITION OF meshhook.queue_archive DEFAULT;
CREATE INDEX queue_archive_queue_idx ON meshhook.queue_archive (queue, archived_at);
SELECT meshhook.ensure_monthly_partitions('meshhook.queue_archive', 1);

-- Messages that exceeded their queue's max_reads: a worker kept dying or
-- failing on them. They stay here until an operator requeues or drops them.
CREATE TABLE meshhook.queue_dead_letters (
    msg_id      bigint PRIMARY KEY,
    queue       text NOT NULL,
    read_ct     integer NOT NULL,
    enqueued_at timestamptz NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT now(),
    message     jsonb NOT NULL
);
CREATE INDEX queue_dead_letters_queue_idx ON meshhook.queue_dead_letters (queue, dead_at);

-- Wake idle readers: one notification per inserting transaction and queue
-- (PostgreSQL folds identical notifications within a transaction), sent at
-- commit, so a reader never wakes for a message it cannot see yet. Delayed
-- messages notify too; readers then sleep until the earliest vt or their poll
-- interval, whichever comes first.
-- A statement-level trigger: a batch of a thousand messages costs one call.
CREATE FUNCTION meshhook.queue_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('meshhook_queue', q.queue) FROM (SELECT DISTINCT queue FROM new_rows) q;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_messages_notify AFTER INSERT ON meshhook.queue_messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meshhook.queue_notify();

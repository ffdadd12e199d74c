-- CronJob semantics for crons (AgentCron and the HTTP API alike) and the AgentCron link.
-- API crons keep the Agent Server's behaviour through the defaults: policy 'allow', no
-- starting deadline, no owner.
ALTER TABLE cron
    ADD COLUMN concurrency_policy text NOT NULL DEFAULT 'allow'
        CHECK (concurrency_policy IN ('allow', 'forbid', 'replace')),
    ADD COLUMN starting_deadline_seconds integer,
    -- '<namespace>/<name>' of the AgentCron that owns this row; NULL for API crons.
    ADD COLUMN source text,
    -- hash of the AgentCron fields the row was last written from (skip no-op upserts)
    ADD COLUMN source_hash text,
    ADD COLUMN successful_history_limit integer,
    ADD COLUMN failed_history_limit integer;
CREATE INDEX cron_source ON cron (source) WHERE source IS NOT NULL;

-- One row per scheduled time of a cron: the idempotency key of a tick. A retried or
-- concurrent fire of the same (cron, scheduled time) finds the row and starts nothing.
CREATE TABLE cron_tick (
    cron_id      uuid NOT NULL REFERENCES cron (cron_id) ON DELETE CASCADE,
    scheduled_at timestamptz NOT NULL,
    decision     text NOT NULL
                 CHECK (decision IN ('claimed', 'started', 'skipped', 'missed', 'failed')),
    reason       text,
    run_id       uuid,
    thread_id    uuid,
    -- final status of the run, copied once it ends (runs of deleted threads go away)
    run_status   text,
    finished_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (cron_id, scheduled_at)
);
CREATE INDEX cron_tick_open ON cron_tick (run_id) WHERE decision = 'started' AND run_status IS NULL;

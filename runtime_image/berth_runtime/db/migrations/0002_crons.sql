-- Scheduled runs. A cron with a thread_id runs on that thread; without, each fire is a
-- stateless run.
CREATE TABLE cron (
    cron_id          uuid PRIMARY KEY,
    assistant_id     uuid NOT NULL,
    thread_id        uuid,
    schedule         text NOT NULL,
    timezone         text NOT NULL DEFAULT 'UTC',
    end_time         timestamptz,
    payload          jsonb NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}',
    enabled          boolean NOT NULL DEFAULT true,
    on_run_completed text NOT NULL DEFAULT 'delete'
                     CHECK (on_run_completed IN ('delete', 'keep')),
    user_id          text,
    next_run_date    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cron_due ON cron (next_run_date) WHERE enabled;
CREATE INDEX cron_thread ON cron (thread_id);

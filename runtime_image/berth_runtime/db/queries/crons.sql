-- name: insert_cron
INSERT INTO cron (cron_id, assistant_id, thread_id, schedule, timezone, end_time, payload,
                  metadata, enabled, on_run_completed, next_run_date)
VALUES (%(cron_id)s, %(assistant_id)s, %(thread_id)s, %(schedule)s, %(timezone)s,
        %(end_time)s, %(payload)s, %(metadata)s, %(enabled)s, %(on_run_completed)s,
        %(next_run_date)s)
RETURNING *;

-- name: get_cron
SELECT * FROM cron WHERE cron_id = %(cron_id)s;

-- name: update_cron
UPDATE cron
SET schedule = %(schedule)s, timezone = %(timezone)s, end_time = %(end_time)s,
    payload = %(payload)s, metadata = %(metadata)s, enabled = %(enabled)s,
    on_run_completed = %(on_run_completed)s, next_run_date = %(next_run_date)s,
    updated_at = clock_timestamp()
WHERE cron_id = %(cron_id)s
RETURNING *;

-- name: delete_cron
DELETE FROM cron WHERE cron_id = %(cron_id)s RETURNING cron_id;

-- name: due_crons
SELECT * FROM cron
WHERE enabled AND next_run_date IS NOT NULL AND next_run_date <= %(now)s
ORDER BY next_run_date
LIMIT %(limit)s;

-- name: advance_cron
-- Claim one fire: only the scheduler that moves next_run_date from the value it read wins.
UPDATE cron
SET next_run_date = %(next_run_date)s, updated_at = clock_timestamp()
WHERE cron_id = %(cron_id)s AND next_run_date = %(due)s AND enabled
RETURNING *;

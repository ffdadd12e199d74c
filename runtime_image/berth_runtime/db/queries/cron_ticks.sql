-- Ticks of crons (the idempotency keys of fires) and crons owned by AgentCrons.

-- name: claim_tick
-- Only the first claim of a (cron, scheduled time) gets a row back; retries get nothing.
INSERT INTO cron_tick (cron_id, scheduled_at, decision)
VALUES (%(cron_id)s, %(scheduled_at)s, 'claimed')
ON CONFLICT DO NOTHING
RETURNING *;

-- name: take_abandoned_ticks
-- Ticks claimed by a scheduler that never got to start their run (it died in between):
-- each is taken over by moving its claim time to now, so only one scheduler gets it.
UPDATE cron_tick t
SET created_at = clock_timestamp()
FROM (
    SELECT cron_id, scheduled_at FROM cron_tick
    WHERE decision = 'claimed'
      AND created_at < clock_timestamp() - make_interval(secs => %(seconds)s)
    ORDER BY created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) abandoned
WHERE t.cron_id = abandoned.cron_id AND t.scheduled_at = abandoned.scheduled_at
  AND t.decision = 'claimed'
RETURNING t.cron_id, t.scheduled_at;

-- name: set_tick
UPDATE cron_tick
SET decision = %(decision)s, reason = %(reason)s, run_id = %(run_id)s, thread_id = %(thread_id)s
WHERE cron_id = %(cron_id)s AND scheduled_at = %(scheduled_at)s;

-- name: active_cron_runs
SELECT r.run_id, r.thread_id, r.status FROM cron_tick t JOIN run r ON r.run_id = t.run_id
WHERE t.cron_id = %(cron_id)s AND t.decision = 'started' AND t.run_status IS NULL
  AND r.status IN ('pending', 'running')
ORDER BY t.scheduled_at;

-- name: settle_ticks
-- Copy the final status of ended runs onto their ticks; a run that is gone (its thread was
-- deleted with its runs, or it was rolled back) counts as 'gone'.
UPDATE cron_tick t
SET run_status = coalesce(r.status, 'gone'),
    finished_at = coalesce(r.ended_at, r.updated_at, clock_timestamp())
FROM cron_tick t2 LEFT JOIN run r ON r.run_id = t2.run_id
WHERE t.cron_id = t2.cron_id AND t.scheduled_at = t2.scheduled_at
  AND t.decision = 'started' AND t.run_status IS NULL AND t.run_id IS NOT NULL
  AND (r.run_id IS NULL OR r.status NOT IN ('pending', 'running'))
RETURNING t.cron_id, t.scheduled_at, t.run_id, t.run_status;

-- name: expired_kept_threads
-- Kept threads of stateless crons beyond their history limits (newest kept first).
SELECT cron_id, scheduled_at, thread_id FROM (
    SELECT t.cron_id, t.scheduled_at, t.thread_id, t.run_status,
           c.successful_history_limit, c.failed_history_limit,
           row_number() OVER (PARTITION BY t.cron_id, t.run_status = 'success'
                              ORDER BY t.scheduled_at DESC) AS n
    FROM cron_tick t JOIN cron c ON c.cron_id = t.cron_id
    WHERE c.thread_id IS NULL AND c.on_run_completed = 'keep'
      AND (c.successful_history_limit IS NOT NULL OR c.failed_history_limit IS NOT NULL)
      AND t.run_status IS NOT NULL AND t.thread_id IS NOT NULL
) kept
WHERE n > CASE WHEN run_status = 'success' THEN successful_history_limit
               ELSE failed_history_limit END;

-- name: prune_ticks
-- Keep the newest %(keep)s ticks of each cron (the status reads the newest; a retry can only
-- concern the latest), plus ticks whose run is still going and ticks holding a kept thread
-- that a history limit still counts.
DELETE FROM cron_tick t
USING (
    SELECT cron_id, scheduled_at,
           row_number() OVER (PARTITION BY cron_id ORDER BY scheduled_at DESC) AS n
    FROM cron_tick
) ranked, cron c
WHERE t.cron_id = ranked.cron_id AND t.scheduled_at = ranked.scheduled_at
  AND c.cron_id = t.cron_id
  AND ranked.n > %(keep)s
  AND NOT (t.decision = 'started' AND t.run_status IS NULL)
  AND NOT (t.thread_id IS NOT NULL AND c.thread_id IS NULL AND c.on_run_completed = 'keep'
           AND c.successful_history_limit IS NOT NULL)
RETURNING t.cron_id;

-- name: forget_tick_thread
UPDATE cron_tick SET thread_id = NULL
WHERE cron_id = %(cron_id)s AND scheduled_at = %(scheduled_at)s;

-- name: cron_tick_summary
SELECT
    (SELECT scheduled_at FROM cron_tick WHERE cron_id = %(cron_id)s AND decision = 'started'
     ORDER BY scheduled_at DESC LIMIT 1) AS last_schedule,
    (SELECT run_id FROM cron_tick WHERE cron_id = %(cron_id)s AND decision = 'started'
     ORDER BY scheduled_at DESC LIMIT 1) AS last_run_id,
    (SELECT max(scheduled_at) FROM cron_tick
     WHERE cron_id = %(cron_id)s AND run_status = 'success') AS last_success,
    (SELECT run_status FROM cron_tick WHERE cron_id = %(cron_id)s AND run_status IS NOT NULL
     ORDER BY scheduled_at DESC LIMIT 1) AS last_status,
    (SELECT coalesce(array_agg(run_id::text ORDER BY scheduled_at), '{}') FROM cron_tick
     WHERE cron_id = %(cron_id)s AND decision = 'started' AND run_status IS NULL
       AND run_id IS NOT NULL) AS active;

-- name: list_ticks
SELECT * FROM cron_tick WHERE cron_id = %(cron_id)s ORDER BY scheduled_at;

-- name: upsert_owned_cron
-- Write a cron from its AgentCron; a row already written from the same fields is left alone.
INSERT INTO cron (cron_id, assistant_id, thread_id, schedule, timezone, end_time, payload,
                  metadata, enabled, on_run_completed, next_run_date, concurrency_policy,
                  starting_deadline_seconds, source, source_hash, successful_history_limit,
                  failed_history_limit)
VALUES (%(cron_id)s, %(assistant_id)s, %(thread_id)s, %(schedule)s, %(timezone)s,
        %(end_time)s, %(payload)s, %(metadata)s, %(enabled)s, %(on_run_completed)s,
        %(next_run_date)s, %(concurrency_policy)s, %(starting_deadline_seconds)s, %(source)s,
        %(source_hash)s, %(successful_history_limit)s, %(failed_history_limit)s)
ON CONFLICT (cron_id) DO UPDATE
SET assistant_id = EXCLUDED.assistant_id, thread_id = EXCLUDED.thread_id,
    schedule = EXCLUDED.schedule, timezone = EXCLUDED.timezone, end_time = EXCLUDED.end_time,
    payload = EXCLUDED.payload, metadata = EXCLUDED.metadata, enabled = EXCLUDED.enabled,
    on_run_completed = EXCLUDED.on_run_completed, next_run_date = EXCLUDED.next_run_date,
    concurrency_policy = EXCLUDED.concurrency_policy,
    starting_deadline_seconds = EXCLUDED.starting_deadline_seconds,
    source = EXCLUDED.source, source_hash = EXCLUDED.source_hash,
    successful_history_limit = EXCLUDED.successful_history_limit,
    failed_history_limit = EXCLUDED.failed_history_limit, updated_at = clock_timestamp()
WHERE cron.source_hash IS DISTINCT FROM EXCLUDED.source_hash
RETURNING *;

-- name: owned_crons
SELECT * FROM cron WHERE source LIKE %(prefix)s;

-- name: delete_owned_crons_except
-- Crons whose AgentCron is gone (or points at another deployment now).
DELETE FROM cron
WHERE source LIKE %(prefix)s
  AND NOT (cron_id::text IN (SELECT jsonb_array_elements_text(%(keep)s)))
RETURNING cron_id, source;

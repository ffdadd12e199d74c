-- name: lock_thread
SELECT * FROM thread WHERE thread_id = %(thread_id)s FOR UPDATE;

-- name: inflight_runs
SELECT run_id, status FROM run
WHERE thread_id = %(thread_id)s AND status IN ('pending', 'running')
ORDER BY created_at;

-- name: insert_run
-- The run and its thread marked busy (migration 0004, berth_insert_run).
SELECT * FROM berth_insert_run(
    %(run_id)s::uuid, %(thread_id)s::uuid, %(assistant_id)s::uuid, %(metadata)s::jsonb,
    %(kwargs)s::jsonb, %(multitask_strategy)s::text, %(after_seconds)s::double precision,
    %(temporary)s::boolean, %(thread_metadata)s::jsonb);

-- name: enqueue_run
-- Creating a run in one call when nothing needs deciding (migration 0004, berth_enqueue_run);
-- no row: take the general path.
SELECT * FROM berth_enqueue_run(
    %(run_id)s::uuid, %(thread_id)s::uuid, %(assistant_id)s::uuid,
    %(assistant_updated_at)s::timestamptz, %(metadata)s::jsonb,
    %(kwargs)s::jsonb, %(multitask_strategy)s::text, %(after_seconds)s::double precision,
    %(thread_metadata)s::jsonb, %(new_thread_metadata)s::jsonb,
    %(new_thread_temporary)s::boolean);

-- name: get_run
SELECT * FROM run WHERE run_id = %(run_id)s AND thread_id = %(thread_id)s;

-- name: get_run_by_id
SELECT * FROM run WHERE run_id = %(run_id)s;

-- name: list_runs
SELECT *, count(*) OVER () AS total FROM run
WHERE thread_id = %(thread_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: delete_finished_run
DELETE FROM run
WHERE run_id = %(run_id)s AND thread_id = %(thread_id)s AND status NOT IN ('pending', 'running')
RETURNING run_id;

-- name: find_active_runs
SELECT run_id, thread_id, status, metadata FROM run
WHERE status = ANY(%(statuses)s::text[])
  AND (%(run_ids)s::uuid[] IS NULL OR run_id = ANY(%(run_ids)s::uuid[]))
  AND (%(thread_id)s::uuid IS NULL OR thread_id = %(thread_id)s::uuid);

-- name: thread_active_run
SELECT run_id, created_at, status FROM run
WHERE thread_id = %(thread_id)s AND status IN ('pending', 'running')
ORDER BY (status = 'running') DESC, created_at
LIMIT 1;

-- name: thread_run_after
SELECT run_id, created_at, status FROM run
WHERE thread_id = %(thread_id)s AND created_at > %(after)s
ORDER BY created_at
LIMIT 1;

-- name: active_run_counts
SELECT status, count(*) AS n FROM run WHERE status IN ('pending', 'running') GROUP BY status;

-- name: oldest_pending_age
-- Seconds the oldest due pending run has waited (0 when none waits); uses run_pending.
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(available_at)), 0)::float8 AS seconds
FROM run WHERE status = 'pending' AND available_at <= clock_timestamp();

-- name: clock
SELECT clock_timestamp() AS now;

-- name: count_pending_runs
-- The queue's depth, for BERTH_MAX_PENDING_RUNS (on the partial index run_pending).
SELECT count(*) AS n FROM run WHERE status = 'pending';

-- name: lock_thread
SELECT * FROM thread WHERE thread_id = %(thread_id)s FOR UPDATE;

-- name: inflight_runs
SELECT run_id, status FROM run
WHERE thread_id = %(thread_id)s AND status IN ('pending', 'running')
ORDER BY created_at;

-- name: insert_run
-- created_at = updated_at marks a run no worker has claimed yet (every later change of the row
-- moves updated_at), so its first attempt need not look for a checkpoint of its own.
INSERT INTO run (run_id, thread_id, assistant_id, status, metadata, kwargs, multitask_strategy,
                 available_at, temporary, created_at, updated_at)
SELECT %(run_id)s, %(thread_id)s, %(assistant_id)s, 'pending', %(metadata)s, %(kwargs)s,
       %(multitask_strategy)s,
       now_.t + make_interval(secs => %(after_seconds)s), %(temporary)s, now_.t, now_.t
FROM (SELECT clock_timestamp() AS t) AS now_
RETURNING *;

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

-- name: clock
SELECT clock_timestamp() AS now;

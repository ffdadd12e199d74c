-- Queue state changes. Each one is a guarded UPDATE ... RETURNING: it only applies when the
-- row is still in the state the caller believes, and a worker's writes are fenced by
-- (owner, attempt) so a worker that lost its lease cannot overwrite anything.

-- name: claim_runs
-- The oldest pending runs that are due, at most one per thread, never for a thread that already
-- has a running run (the partial unique index run_one_running_per_thread is the last guard).
-- `never_claimed`: no attempt of this run ever started (see insert_run), so no checkpoint of
-- the thread can be this run's.
WITH candidate AS (
    SELECT r.run_id, (r.attempt = 0 AND r.updated_at = r.created_at) AS never_claimed
    FROM run r
    WHERE r.status = 'pending'
      AND r.available_at <= clock_timestamp()
      AND NOT EXISTS (
          SELECT 1 FROM run a WHERE a.thread_id = r.thread_id AND a.status = 'running')
      AND NOT EXISTS (
          SELECT 1 FROM run e
          WHERE e.thread_id = r.thread_id AND e.status = 'pending'
            AND (e.created_at, e.run_id) < (r.created_at, r.run_id))
    ORDER BY r.created_at
    LIMIT %(limit)s
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE run
SET status = 'running',
    owner = %(owner)s,
    owner_lock = %(owner_lock)s,
    attempt = run.attempt + 1,
    lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s),
    updated_at = clock_timestamp()
FROM candidate
WHERE run.run_id = candidate.run_id AND run.status = 'pending'
RETURNING run.*, candidate.never_claimed;

-- name: heartbeat
-- Extend the lease; answers the pending cancel request, if any. No row: the lease is lost.
UPDATE run
SET lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s)
WHERE run_id = %(run_id)s AND owner = %(owner)s AND attempt = %(attempt)s
  AND status = 'running'
RETURNING cancel_action;

-- name: finish_run
UPDATE run
SET status = %(status)s,
    result = %(result)s,
    owner = NULL,
    lease_expires_at = NULL,
    updated_at = clock_timestamp(),
    ended_at = clock_timestamp()
WHERE run_id = %(run_id)s AND owner = %(owner)s AND attempt = %(attempt)s
  AND status = 'running'
RETURNING run_id, thread_id;

-- name: finish_run_set_thread
-- finish_run, the thread's new state and its status in one call (migration 0004,
-- berth_finish_run): the thread's status afterwards, NULL if the lease was lost.
SELECT berth_finish_run(
    %(run_id)s::uuid, %(owner)s::text, %(attempt)s::integer, %(status)s::text,
    %(result)s::jsonb, %(values)s::jsonb, %(interrupts)s::jsonb, %(error)s::jsonb,
    %(idle_status)s::text) AS thread_status;

-- name: delete_running_run
-- Rollback of a running run: the row goes away, fenced like every other worker write.
DELETE FROM run
WHERE run_id = %(run_id)s AND owner = %(owner)s AND attempt = %(attempt)s
  AND status = 'running'
RETURNING run_id, thread_id;

-- name: requeue_run
-- Graceful shutdown: give the run back without counting the attempt.
UPDATE run
SET status = 'pending',
    owner = NULL,
    owner_lock = NULL,
    lease_expires_at = NULL,
    attempt = greatest(run.attempt - 1, 0),
    updated_at = clock_timestamp()
WHERE run_id = %(run_id)s AND owner = %(owner)s AND attempt = %(attempt)s
  AND status = 'running'
RETURNING run_id, thread_id;

-- name: reap_lost
-- Runs whose worker is gone: back to pending, or failed after the last attempt, or
-- interrupted if a cancel had been requested. Gone means either
-- - dead: the worker's liveness lock (`owner_lock`, a session-level advisory lock it holds on
--   a connection of its own, migration 0006) is held by no session of this database any more,
--   because Postgres ended that session when the process or its connection died, and no
--   session of that process is left either (its pool connections carry the application name
--   `berth <last part of owner>`): a statement it sent just before dying, such as a checkpoint
--   write, has then been carried out or rolled back before another attempt can start; or
-- - given up: the worker lost its liveness session but lives on; it stopped those runs and
--   names their old lock in `lost_locks` (its own reaper only); or
-- - silent: its lease lapsed (a worker hung but still connected, a lost network path the
--   server has not noticed yet, or a worker that holds no liveness lock).
-- Only the attempts that died at the same checkpoint count against `max_attempts` (migration
-- 0007): `done` is how many checkpoints the run has now; more than at the last re-queue is
-- progress, and the count starts again with the attempt that made it.
-- pg_locks shows a bigint advisory key as classid (high half), objid (low half), objsubid 1.
UPDATE run
SET status = CASE
        WHEN run.cancel_action IS NOT NULL THEN 'interrupted'
        WHEN lost.done <= run.progress_checkpoints
             AND run.attempt - run.attempts_counted_from >= %(max_attempts)s THEN 'error'
        ELSE 'pending' END,
    result = CASE
        WHEN run.cancel_action IS NULL AND lost.done <= run.progress_checkpoints
             AND run.attempt - run.attempts_counted_from >= %(max_attempts)s THEN
        jsonb_build_object('__error__', jsonb_build_object(
                'error', 'RunAttemptsExceeded',
                'message', 'Run ' || run.run_id::text || ' exceeded max attempts ('
                    || (run.attempt - run.attempts_counted_from)::text
                    || '): its worker died or stopped heartbeating each time without getting'
                    || ' past the same checkpoint. Check for OOM kills, pod restarts or a'
                    || ' crashing graph.'))
        ELSE run.result END,
    ended_at = CASE
        WHEN run.cancel_action IS NOT NULL
             OR (lost.done <= run.progress_checkpoints
                 AND run.attempt - run.attempts_counted_from >= %(max_attempts)s)
        THEN clock_timestamp() ELSE NULL END,
    attempts_counted_from = CASE
        WHEN lost.done > run.progress_checkpoints THEN run.attempt - 1
        ELSE run.attempts_counted_from END,
    progress_checkpoints = GREATEST(lost.done, run.progress_checkpoints),
    owner = NULL,
    owner_lock = NULL,
    lease_expires_at = NULL,
    updated_at = clock_timestamp()
FROM (
    SELECT r.run_id,
           (SELECT count(*) FROM checkpoints c
            WHERE c.thread_id = r.thread_id::text
              AND c.metadata ->> 'run_id' = r.run_id::text)::integer AS done
    FROM run r
    WHERE r.status = 'running'
      AND (r.lease_expires_at < clock_timestamp()
           OR r.owner_lock = ANY(%(lost_locks)s::bigint[])
           OR (r.owner_lock IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                     AND l.classid::bigint = (r.owner_lock >> 32) & 4294967295
                     AND l.objid::bigint = r.owner_lock & 4294967295)
               AND NOT EXISTS (
                   SELECT 1 FROM pg_stat_activity a
                   WHERE a.application_name = 'berth ' || substring(r.owner FROM '[^:]*$'))))
    FOR UPDATE OF r SKIP LOCKED) AS lost
WHERE run.run_id = lost.run_id
  AND run.status = 'running'
RETURNING run.run_id, run.thread_id, run.status, run.attempt, run.result;

-- name: take_liveness_lock
-- A worker's liveness lock (see reap_lost), on its own connection for as long as it lives.
-- Keys are random: try, and draw another in the unlikely case one is taken.
SELECT pg_try_advisory_lock(%(key)s) AS locked;

-- name: request_cancel
UPDATE run
SET cancel_action = %(action)s, updated_at = clock_timestamp()
WHERE run_id = ANY(%(run_ids)s) AND status = 'running'
RETURNING run_id, thread_id;

-- name: cancel_pending
-- A pending run that is interrupted before it starts simply ends.
UPDATE run
SET status = 'interrupted', cancel_action = %(action)s,
    updated_at = clock_timestamp(), ended_at = clock_timestamp()
WHERE run_id = ANY(%(run_ids)s) AND status = 'pending'
RETURNING run_id, thread_id;

-- name: delete_pending
DELETE FROM run
WHERE run_id = ANY(%(run_ids)s) AND status = 'pending'
RETURNING run_id, thread_id;

-- name: delete_run_checkpoints
-- Rollback: drop what the run checkpointed (every namespace) and the writes attached to it.
WITH gone AS (
    DELETE FROM checkpoints
    WHERE thread_id = %(thread_id)s AND metadata ->> 'run_id' = %(run_id)s
    RETURNING thread_id, checkpoint_ns, checkpoint_id
)
DELETE FROM checkpoint_writes w
USING gone
WHERE w.thread_id = gone.thread_id AND w.checkpoint_ns = gone.checkpoint_ns
  AND w.checkpoint_id = gone.checkpoint_id;

-- name: purge_temporary_runs
-- Stateless runs keep their row for a while so /runs/wait can read the result.
DELETE FROM run
WHERE temporary AND ended_at IS NOT NULL
  AND ended_at < clock_timestamp() - make_interval(secs => %(keep_seconds)s)
RETURNING run_id;

-- name: ttl_expired_threads
-- Threads whose own `ttl` (minutes since their last update) has run out.
SELECT thread_id, ttl ->> 'strategy' AS strategy FROM thread
WHERE ttl IS NOT NULL AND status <> 'busy' AND NOT temporary
  AND updated_at + make_interval(secs => (ttl ->> 'ttl')::float * 60) < clock_timestamp()
LIMIT 100;

-- name: touch_thread
-- keep_latest: the ttl starts over from the prune.
UPDATE thread SET updated_at = clock_timestamp() WHERE thread_id = %(thread_id)s;

-- name: expired_threads
SELECT thread_id FROM thread
WHERE status <> 'busy' AND updated_at < clock_timestamp() - make_interval(secs => %(minutes)s * 60)
LIMIT 1000;

-- name: put_checkpoints
-- One thread's queued checkpoint writes in one call (berth_put_checkpoints, migration 0004;
-- db/checkpointer.py builds the batch).
SELECT berth_put_checkpoints(%(thread_id)s::text, %(batch)s::jsonb);

-- name: insert_thread
INSERT INTO thread (thread_id, metadata, config, ttl, temporary)
VALUES (%(thread_id)s, %(metadata)s, %(config)s, %(ttl)s, %(temporary)s)
ON CONFLICT (thread_id) DO NOTHING
RETURNING *;

-- name: get_thread
SELECT * FROM thread WHERE thread_id = %(thread_id)s;

-- name: patch_thread
UPDATE thread
SET metadata = metadata || %(metadata)s,
    ttl = COALESCE(%(ttl)s, ttl),
    updated_at = clock_timestamp()
WHERE thread_id = %(thread_id)s
RETURNING *;

-- name: delete_thread
DELETE FROM thread WHERE thread_id = %(thread_id)s RETURNING thread_id;

-- name: delete_thread_crons
DELETE FROM cron WHERE thread_id = %(thread_id)s RETURNING cron_id;

-- name: delete_thread_runs
DELETE FROM run WHERE thread_id = %(thread_id)s RETURNING run_id, status;

-- name: thread_exists
SELECT thread_id FROM thread WHERE thread_id = %(thread_id)s;

-- name: set_thread_state
UPDATE thread
SET "values" = %(values)s,
    interrupts = %(interrupts)s,
    error = %(error)s,
    idle_status = %(idle_status)s,
    updated_at = clock_timestamp(),
    state_updated_at = clock_timestamp()
WHERE thread_id = %(thread_id)s;

-- name: refresh_thread_status
-- busy while a run is pending or running; otherwise what the last state says.
UPDATE thread
SET status = CASE
        WHEN EXISTS (SELECT 1 FROM run
                     WHERE run.thread_id = thread.thread_id
                       AND run.status IN ('pending', 'running')) THEN 'busy'
        ELSE idle_status END,
    updated_at = clock_timestamp()
WHERE thread_id = %(thread_id)s
RETURNING status;

-- name: copy_thread
INSERT INTO thread (thread_id, metadata, config, status, "values", interrupts, error,
                    idle_status, ttl)
SELECT %(new_thread_id)s, metadata, config, idle_status, "values", interrupts, error,
       idle_status, ttl
FROM thread WHERE thread_id = %(thread_id)s
RETURNING *;

-- name: copy_checkpoints
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
                         checkpoint, metadata)
SELECT %(new_thread_id)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       metadata
FROM checkpoints WHERE thread_id = %(thread_id)s;

-- name: copy_checkpoint_blobs
INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
SELECT %(new_thread_id)s, checkpoint_ns, channel, version, type, blob
FROM checkpoint_blobs WHERE thread_id = %(thread_id)s;

-- name: copy_checkpoint_writes
INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel,
                               type, blob, task_path)
SELECT %(new_thread_id)s, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob,
       task_path
FROM checkpoint_writes WHERE thread_id = %(thread_id)s;

-- name: set_thread_state_keep_values
UPDATE thread
SET error = %(error)s,
    idle_status = %(idle_status)s,
    updated_at = clock_timestamp()
WHERE thread_id = %(thread_id)s;

-- The hot path of a run as server-side functions: one statement per step instead of a
-- pipelined transaction of several. psycopg spends about 1 ms of client CPU driving a
-- five-statement pipeline against 0.2 ms for one function call (bench/README.md), and a
-- function call needs no BEGIN/COMMIT round of its own. Every statement inside a VOLATILE
-- plpgsql function takes a fresh snapshot (READ COMMITTED), so a statement that follows a
-- row lock sees everything committed before the lock was granted, as separate statements of
-- one transaction did.

-- A new run and its thread marked busy. Used by both paths of creating a run.
CREATE FUNCTION berth_insert_run(
    p_run_id uuid, p_thread_id uuid, p_assistant_id uuid, p_metadata jsonb, p_kwargs jsonb,
    p_strategy text, p_after_seconds double precision, p_temporary boolean,
    p_thread_metadata jsonb)
RETURNS SETOF run LANGUAGE plpgsql AS $$
DECLARE
    created run;
    now_ timestamptz := clock_timestamp();
BEGIN
    -- created_at = updated_at marks a run no worker has claimed yet (every later change of
    -- the row moves updated_at), so its first attempt need not look for a checkpoint.
    INSERT INTO run (run_id, thread_id, assistant_id, status, metadata, kwargs,
                     multitask_strategy, available_at, temporary, created_at, updated_at)
    VALUES (p_run_id, p_thread_id, p_assistant_id, 'pending', p_metadata, p_kwargs, p_strategy,
            now_ + make_interval(secs => p_after_seconds), p_temporary, now_, now_)
    RETURNING * INTO created;
    UPDATE thread
    SET status = 'busy', metadata = metadata || p_thread_metadata, updated_at = now_
    WHERE thread_id = p_thread_id;
    RETURN NEXT created;
END $$;

-- The common case of creating a run in one call: a new stateless thread, or a stateful thread
-- that exists and either has no run in flight or takes the `enqueue` strategy. Anything else
-- (missing thread, `if_not_exists`, reject/interrupt/rollback against a run in flight)
-- returns no row and changes nothing; the caller then takes the general path.
-- `p_assistant_updated_at`: the version of the assistant the caller built the run from (a
-- cached copy); if the assistant changed or is gone since, nothing happens either.
CREATE FUNCTION berth_enqueue_run(
    p_run_id uuid, p_thread_id uuid, p_assistant_id uuid, p_assistant_updated_at timestamptz,
    p_metadata jsonb, p_kwargs jsonb, p_strategy text, p_after_seconds double precision,
    p_thread_metadata jsonb, p_new_thread_metadata jsonb, p_new_thread_temporary boolean)
RETURNS SETOF run LANGUAGE plpgsql AS $$
DECLARE
    is_temporary boolean;
BEGIN
    PERFORM 1 FROM assistant
    WHERE assistant_id = p_assistant_id AND updated_at = p_assistant_updated_at;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_new_thread_metadata IS NOT NULL THEN
        INSERT INTO thread (thread_id, metadata, config, ttl, temporary)
        VALUES (p_thread_id, p_new_thread_metadata, '{}', NULL, p_new_thread_temporary);
    ELSE
        SELECT temporary INTO is_temporary FROM thread
        WHERE thread_id = p_thread_id FOR UPDATE;
        IF NOT FOUND OR is_temporary THEN
            RETURN;
        END IF;
        IF p_strategy <> 'enqueue' AND EXISTS (
            SELECT 1 FROM run
            WHERE thread_id = p_thread_id AND status IN ('pending', 'running')) THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM berth_insert_run(
        p_run_id, p_thread_id, p_assistant_id, p_metadata, p_kwargs, p_strategy,
        p_after_seconds, p_new_thread_metadata IS NOT NULL, p_thread_metadata);
END $$;

-- A worker records a run's outcome and its thread's new state, fenced by (owner, attempt).
-- Returns the thread's status afterwards (`busy`: another run of it is waiting), or NULL when
-- the lease was lost and nothing was written.
CREATE FUNCTION berth_finish_run(
    p_run_id uuid, p_owner text, p_attempt integer, p_status text, p_result jsonb,
    p_values jsonb, p_interrupts jsonb, p_error jsonb, p_idle_status text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tid uuid;
    now_ timestamptz := clock_timestamp();
    thread_status text;
BEGIN
    UPDATE run
    SET status = p_status, result = p_result, owner = NULL, lease_expires_at = NULL,
        updated_at = now_, ended_at = now_
    WHERE run_id = p_run_id AND owner = p_owner AND attempt = p_attempt
      AND status = 'running'
    RETURNING thread_id INTO tid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Takes the thread's row lock; the next statement's snapshot then sees every run created
    -- on the thread before the lock was granted.
    UPDATE thread
    SET "values" = p_values, interrupts = p_interrupts, error = p_error,
        idle_status = p_idle_status, updated_at = now_, state_updated_at = now_
    WHERE thread_id = tid;
    UPDATE thread
    SET status = CASE
            WHEN EXISTS (SELECT 1 FROM run
                         WHERE run.thread_id = thread.thread_id
                           AND run.status IN ('pending', 'running')) THEN 'busy'
            ELSE idle_status END
    WHERE thread_id = tid
    RETURNING status INTO thread_status;
    RETURN coalesce(thread_status, 'busy');
END $$;

-- One thread's queued checkpoint writes (LangGraph's tables, LangGraph's upsert rules) in one
-- call: channel blobs, checkpoints and task writes, each group applied in the order given so
-- a later upsert of the same key wins, as the statements one after the other did. The batch
-- is one jsonb document (db/checkpointer.py builds it), which costs the client far less to
-- send than a score of array parameters: {"b": [[ns, channel, version, type, blob]],
-- "c": [[ns, id, parent, checkpoint, metadata]], "w": [[ns, checkpoint id, task id,
-- task path, idx, channel, type, blob, upsert]]}, blobs in base64. LangGraph's own
-- migrations create these tables after Berth's, which plpgsql allows (names in its body are
-- resolved when it first runs).
CREATE FUNCTION berth_put_checkpoints(p_thread_id text, p_batch jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
BEGIN
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT p_thread_id, b->>0, b->>1, b->>2, b->>3, decode(b->>4, 'base64')
    FROM jsonb_array_elements(p_batch->'b') AS b
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING;
    FOR e IN SELECT value FROM jsonb_array_elements(p_batch->'c') LOOP
        INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
                                 checkpoint, metadata)
        VALUES (p_thread_id, e->>0, e->>1, e->>2, e->3, e->4)
        ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
        DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata;
    END LOOP;
    FOR e IN SELECT value FROM jsonb_array_elements(p_batch->'w') LOOP
        IF (e->>8)::boolean THEN
            INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,
                                           task_path, idx, channel, type, blob)
            VALUES (p_thread_id, e->>0, e->>1, e->>2, e->>3, (e->>4)::integer, e->>5, e->>6,
                    decode(e->>7, 'base64'))
            ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
            DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob;
        ELSE
            INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,
                                           task_path, idx, channel, type, blob)
            VALUES (p_thread_id, e->>0, e->>1, e->>2, e->>3, (e->>4)::integer, e->>5, e->>6,
                    decode(e->>7, 'base64'))
            ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING;
        END IF;
    END LOOP;
END $$;

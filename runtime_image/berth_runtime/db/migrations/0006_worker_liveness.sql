-- Dead workers are found from what dies with them, not by waiting out a lease.
--
-- Each worker process holds a session-level advisory lock on a connection of its own for as
-- long as it lives (queue/liveness.py); a run it claims records that lock's key. When the
-- process dies (SIGKILL, OOM kill, node gone), Postgres ends its session and releases the
-- lock, and any process's reaper re-queues the run at its next pass (`reap_lost`, every
-- BERTH_LIVENESS_SECONDS). NULL: claimed by a worker without the lock (an older version, or
-- BERTH_WORKER_LIVENESS_LOCK=off behind a transaction-pooling PgBouncer); only its lease
-- counts.
ALTER TABLE run ADD COLUMN owner_lock bigint;

-- A run's attempts count towards BG_JOB_MAX_RETRIES only while they make no progress.
--
-- A worker killed under a run that keeps checkpointing (a deploy, a node drained, a random
-- kill) is not a crash loop: the next attempt resumes after the last checkpoint. Only attempts
-- in a row that added no checkpoint of the run (a graph that kills its worker at the same
-- step each time, an OOM) use the budget up. `reap_lost` compares the run's checkpoints now
-- with `progress_checkpoints` (what it counted when it last re-queued the run) and, when there
-- are more, counts attempts from the one that made them (`attempts_counted_from`).
ALTER TABLE run
    ADD COLUMN progress_checkpoints integer NOT NULL DEFAULT 0,
    ADD COLUMN attempts_counted_from integer NOT NULL DEFAULT 0;

-- Assistants, their versions, threads and runs. The run row is the queue entry.
CREATE TABLE assistant (
    assistant_id uuid PRIMARY KEY,
    graph_id     text NOT NULL,
    name         text NOT NULL,
    description  text,
    config       jsonb NOT NULL DEFAULT '{}',
    context      jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assistant_graph_id ON assistant (graph_id);

CREATE TABLE assistant_version (
    assistant_id uuid NOT NULL REFERENCES assistant (assistant_id) ON DELETE CASCADE,
    version      integer NOT NULL,
    graph_id     text NOT NULL,
    name         text NOT NULL,
    description  text,
    config       jsonb NOT NULL DEFAULT '{}',
    context      jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE thread (
    thread_id        uuid PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state_updated_at timestamptz NOT NULL DEFAULT now(),
    metadata         jsonb NOT NULL DEFAULT '{}',
    config           jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'idle'
                     CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    "values"         jsonb,
    interrupts       jsonb NOT NULL DEFAULT '{}',
    error            jsonb,
    -- what status becomes when no run is pending or running
    idle_status      text NOT NULL DEFAULT 'idle'
                     CHECK (idle_status IN ('idle', 'interrupted', 'error')),
    ttl              jsonb,
    temporary        boolean NOT NULL DEFAULT false
);
CREATE INDEX thread_metadata ON thread USING gin (metadata jsonb_path_ops);
-- Threads with their own ttl, for the sweeper.
CREATE INDEX thread_ttl ON thread (updated_at) WHERE ttl IS NOT NULL;

-- No foreign key to thread: a stateless run keeps its row (and its result) for a while after
-- its temporary thread is deleted, so that /runs/wait can still read the outcome.
CREATE TABLE run (
    run_id             uuid PRIMARY KEY,
    thread_id          uuid NOT NULL,
    assistant_id       uuid NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'error', 'success', 'timeout',
                                         'interrupted')),
    metadata           jsonb NOT NULL DEFAULT '{}',
    kwargs             jsonb NOT NULL DEFAULT '{}',
    multitask_strategy text NOT NULL DEFAULT 'enqueue',
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    available_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempt            integer NOT NULL DEFAULT 0,
    owner              text,
    lease_expires_at   timestamptz,
    cancel_action      text CHECK (cancel_action IN ('interrupt', 'rollback')),
    result             jsonb,
    temporary          boolean NOT NULL DEFAULT false,
    ended_at           timestamptz
);
-- At most one running run per thread, enforced by the database itself.
CREATE UNIQUE INDEX run_one_running_per_thread ON run (thread_id) WHERE status = 'running';
CREATE INDEX run_pending ON run (available_at, created_at) WHERE status = 'pending';
CREATE INDEX run_thread ON run (thread_id, created_at);
CREATE INDEX run_lease ON run (lease_expires_at) WHERE status = 'running';

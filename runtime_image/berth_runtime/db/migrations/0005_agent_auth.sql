-- Agent Auth: OAuth tokens stored per (user, provider), and consent flows in progress.
-- Token material is Fernet ciphertext (berth_runtime/agent_auth/crypto.py); nothing here is
-- readable without BERTH_AGENT_AUTH_KEYS.
CREATE TABLE agent_auth_token (
    user_id       text NOT NULL,
    provider      text NOT NULL,
    scopes        text[] NOT NULL,
    access_token  bytea NOT NULL,
    refresh_token bytea,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE agent_auth_flow (
    auth_id       uuid PRIMARY KEY,
    user_id       text NOT NULL,
    provider      text NOT NULL,
    scopes        text[] NOT NULL,
    code_verifier bytea NOT NULL,
    auth_url      text NOT NULL,
    thread_id     uuid,
    run_id        uuid,
    assistant_id  text,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'completed', 'failed')),
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    completed_at  timestamptz
);
CREATE INDEX agent_auth_flow_expires ON agent_auth_flow (expires_at);
